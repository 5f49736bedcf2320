package upstream

import (
	"bufio"
	"bytes"
	"strconv"

	"github.com/signalbox-io/signalbox/internal/httpwire"
)

// quickReply is an upstream's answer read by readQuickReply. body lies in the
// connection's read buffer: it must be copied before n bytes are discarded.
type quickReply struct {
	status int
	close  bool   // "Connection: close": the connection is not reused
	body   []byte // the whole body (nil for 204)
	n      int    // head and body: what to discard from the reader afterwards
}

// readQuickReply reads the common answer of a function app without net/http: an
// HTTP/1.1 200 or 204 whose head and Content-Length body already sit whole in br's
// buffer, with nothing in it that net/http would read differently. It reads nothing
// itself: when ok is false, br is untouched and http.ReadResponse reads the answer
// (interim 1xx answers, chunked bodies, other statuses, anything unusual or not yet
// all there). In the upstream benchmark http.ReadResponse was 9.5 % of the server's
// CPU (the header map, the canonical keys, the body reader and the Response itself,
// per call). FuzzQuickReply holds it to net/http: whatever it accepts, net/http
// reads as the same status, body and keep-alive.
func readQuickReply(br *bufio.Reader) (q quickReply, ok bool) {
	b, _ := br.Peek(br.Buffered())
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return q, false
	}
	head := b[:end+2] // each line with its CRLF
	line, head, _ := bytes.Cut(head, []byte("\r\n"))
	if q.status, ok = statusLine(line); !ok {
		return q, false
	}
	length := -1 // none yet
	for len(head) > 0 {
		line, head, _ = bytes.Cut(head, []byte("\r\n"))
		key, value, found := bytes.Cut(line, []byte(":"))
		if !found || !httpwire.Token(key) {
			return q, false
		}
		value = bytes.Trim(value, " \t")
		if !httpwire.Text(value) {
			return q, false
		}
		switch {
		case httpwire.EqualFold(key, "content-length"):
			if length >= 0 || !httpwire.Digits(value) || len(value) > 18 {
				return q, false
			}
			n, err := strconv.Atoi(string(value)) // no allocation: the conversion is for the call only
			if err != nil {
				return q, false
			}
			length = n
		case httpwire.EqualFold(key, "connection"):
			switch {
			case httpwire.EqualFold(value, "close"):
				q.close = true
			case httpwire.EqualFold(value, "keep-alive"):
			default:
				return q, false
			}
		case httpwire.EqualFold(key, "transfer-encoding"), httpwire.EqualFold(key, "trailer"):
			return q, false
		}
	}
	q.n = end + 4
	if q.status == 204 {
		if length > 0 {
			return q, false
		}
		return q, true
	}
	if length < 0 || len(b)-q.n < length {
		return q, false
	}
	q.body = b[q.n : q.n+length]
	q.n += length
	return q, true
}

// statusLine accepts "HTTP/1.1 200 <reason>" and "HTTP/1.1 204 <reason>" (the reason
// may be empty).
func statusLine(line []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1.1 "))
	if !ok || len(rest) < 3 {
		return 0, false
	}
	var status int
	switch string(rest[:3]) {
	case "200":
		status = 200
	case "204":
		status = 204
	default:
		return 0, false
	}
	rest = rest[3:]
	if len(rest) > 0 && (rest[0] != ' ' || !httpwire.Text(rest[1:])) {
		return 0, false
	}
	return status, true
}
