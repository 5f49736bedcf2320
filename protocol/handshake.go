package protocol

import (
	"bytes"
	"fmt"
	"math"
)

// HandshakeRequest is the first message of a client: the protocol it wants to speak.
type HandshakeRequest struct {
	Protocol string
	Version  int
}

// ParseHandshakeRequest parses {"protocol":"json"|"messagepack","version":N} followed
// by 0x1E. It returns ErrIncomplete until the separator has arrived; rest is what
// followed the separator (already regular messages). Whether the protocol and version
// are supported is for the caller to decide. Unknown properties are ignored.
func ParseHandshakeRequest(data []byte) (req HandshakeRequest, rest []byte, err error) {
	body, rest, err := splitHandshake(data)
	if err != nil {
		return req, nil, err
	}
	var hasProtocol, hasVersion bool
	end, err := forEachProperty(body, 0, func(key []byte, escaped bool, i int) (int, error) {
		switch {
		case keyIs(key, escaped, "protocol"):
			s, end, err := parseString(body, i)
			if err != nil {
				return 0, fmt.Errorf("property protocol: %w", err)
			}
			req.Protocol, hasProtocol = s, true
			return end, nil
		case keyIs(key, escaped, "version"):
			n, end, err := parseInt(body, i)
			if err != nil {
				return 0, fmt.Errorf("property version: %w", err)
			}
			if n < 0 || n > math.MaxInt32 {
				return 0, fmt.Errorf("%w: version %d out of range", ErrInvalidMessage, n)
			}
			req.Version, hasVersion = int(n), true
			return end, nil
		}
		return scanValue(body, i, 0)
	})
	if err == nil && skipWS(body, end) != len(body) {
		err = fmt.Errorf("%w: trailing data after handshake request", ErrInvalidMessage)
	}
	switch {
	case err != nil:
	case !hasProtocol:
		err = fmt.Errorf("%w: missing required property protocol", ErrInvalidMessage)
	case !hasVersion:
		err = fmt.Errorf("%w: missing required property version", ErrInvalidMessage)
	}
	if err != nil {
		return HandshakeRequest{}, nil, fmt.Errorf("protocol: handshake request: %w", err)
	}
	return req, rest, nil
}

// AppendHandshakeRequest appends the handshake a client sends, ending with 0x1E.
func AppendHandshakeRequest(dst []byte, req HandshakeRequest) []byte {
	dst = append(dst, `{"protocol":`...)
	dst = appendQuoted(dst, req.Protocol)
	dst = append(dst, `,"version":`...)
	dst = fmt.Appendf(dst, "%d}", req.Version)
	return append(dst, RecordSeparator)
}

// AppendHandshakeResponse appends "{}\x1e" when errText is empty, else
// {"error":errText}\x1e.
func AppendHandshakeResponse(dst []byte, errText string) []byte {
	if errText == "" {
		return append(dst, '{', '}', RecordSeparator)
	}
	dst = append(dst, `{"error":`...)
	dst = appendQuoted(dst, errText)
	return append(dst, '}', RecordSeparator)
}

// ParseHandshakeResponse parses the server's handshake response for a client.
// errText is the server's error, if any. A response with a "type" property is not a
// handshake response (the peer skipped the handshake) and is an error.
func ParseHandshakeResponse(data []byte) (errText string, rest []byte, err error) {
	body, rest, err := splitHandshake(data)
	if err != nil {
		return "", nil, err
	}
	end, err := forEachProperty(body, 0, func(key []byte, escaped bool, i int) (int, error) {
		switch {
		case keyIs(key, escaped, "type"):
			return 0, fmt.Errorf("%w: expected a handshake response, got a hub message", ErrInvalidMessage)
		case keyIs(key, escaped, "error"):
			if body[i] == 'n' {
				return scanLiteral(body, i, "null")
			}
			s, end, err := parseString(body, i)
			if err != nil {
				return 0, fmt.Errorf("property error: %w", err)
			}
			errText = s
			return end, nil
		}
		return scanValue(body, i, 0)
	})
	if err == nil && skipWS(body, end) != len(body) {
		err = fmt.Errorf("%w: trailing data after handshake response", ErrInvalidMessage)
	}
	if err != nil {
		return "", nil, fmt.Errorf("protocol: handshake response: %w", err)
	}
	return errText, rest, nil
}

func splitHandshake(data []byte) (body, rest []byte, err error) {
	i := bytes.IndexByte(data, RecordSeparator)
	if i < 0 {
		return nil, nil, ErrIncomplete
	}
	return data[:i], data[i+1:], nil
}
