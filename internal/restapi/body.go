package restapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tinylib/msgp/msgp"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/jsonscan"
	"github.com/signalbox-io/signalbox/protocol"
)

const msgBodyRequired = "Message in request body is required."

// DefaultMaxBodyBytes is the REST body limit (1 MiB, the message size limit Azure SignalR
// Service documents: https://learn.microsoft.com/azure/azure-signalr/signalr-howto-troubleshoot-guide).
const DefaultMaxBodyBytes int64 = 1 << 20

// DefaultMaxArgumentDepth is how deeply arguments may nest arrays and objects by
// default (the nesting limit common JSON and MessagePack decoders apply; real messages
// stay far below it).
const DefaultMaxArgumentDepth = 64

// payloadMessage is the JSON PayloadMessage. encoding/json matches field names
// case-insensitively, which is exactly what accepting both the SDK's PascalCase
// and the documented camelCase needs.
type payloadMessage struct {
	Target    *string           `json:"target"`
	Arguments []json.RawMessage `json:"arguments"`
}

// readPayload reads a send body into a payload: JSON PayloadMessage, or an
// octet-stream MessagePack map of pre-framed invocations per protocol. w lets the
// size limit tell the server to close the connection instead of draining it.
func readPayload(w http.ResponseWriter, r *http.Request, maxBytes int64, maxDepth int) (*hub.Payload, error) {
	data, binary, err := readBody(w, r, maxBytes)
	if err != nil {
		return nil, err
	}
	if binary {
		frames, err := parseFramesPayload(data)
		if err != nil {
			return nil, err
		}
		for name, frame := range frames {
			if err := checkFrameMessage(name, frame, maxDepth); err != nil {
				return nil, err
			}
		}
		return hub.PayloadFromFrames(frames), nil
	}
	inv, err := parseJSONPayload(data)
	if err != nil {
		return nil, err
	}
	return deliverable(inv, maxDepth)
}

// deliverable returns the payload of inv once it is known to reach clients of both
// protocols: arguments no deeper than maxDepth, and encodable for each protocol (a
// number MessagePack cannot hold, such as 1e400, would otherwise be accepted with 202
// and dropped at every recipient of that protocol). The frames are cached in the
// payload and reused by the send.
//
// inv comes from parseJSONPayload: its arguments are valid JSON text, so one too
// short to nest deeper than maxDepth (each level takes an opening and a closing
// bracket) is not scanned for its depth.
func deliverable(inv *protocol.Invocation, maxDepth int) (*hub.Payload, error) {
	if !shallowJSON(inv.Arguments, maxDepth) {
		if err := checkArguments(inv.Arguments, maxDepth); err != nil {
			return nil, err
		}
	}
	p := hub.NewPayload(inv)
	// The JSON frame is kept in the payload for the JSON recipients. The MessagePack
	// one is only encoded to be sure it can be, into a reused buffer: most sends have
	// no MessagePack recipient, and the payload encodes it again for one that has.
	if _, err := p.Frame(protocol.JSON()); err != nil {
		return nil, undeliverable(protocol.JSON(), err)
	}
	bp := scratch.Get().(*[]byte)
	b, err := protocol.MessagePack().AppendFrame((*bp)[:0], inv)
	if cap(b) <= maxScratch {
		*bp = b[:0]
		scratch.Put(bp)
	}
	if err != nil {
		return nil, undeliverable(protocol.MessagePack(), err)
	}
	return p, nil
}

// scratch holds buffers for frames that are encoded only to be checked; maxScratch
// bounds the ones kept (a 1 MiB message does not pin 1 MiB).
var scratch = sync.Pool{New: func() any { return new([]byte) }}

const maxScratch = 64 << 10

func undeliverable(proto protocol.Protocol, err error) error {
	return &apiError{kind: errInvalid, msg: "the message cannot be delivered to " + proto.Name() + " clients: " + undeliverableText(err), err: err}
}

// shallowJSON reports whether every argument is JSON text shorter than the
// 2*(maxDepth+1) bytes that nesting deeper than maxDepth needs.
func shallowJSON(args []protocol.Value, maxDepth int) bool {
	for _, a := range args {
		if a.IsMessagePack() {
			return false
		}
		if b, _ := a.JSON(); len(b) >= 2*(maxDepth+1) {
			return false
		}
	}
	return true
}

// checkArguments refuses arguments nested deeper than maxDepth.
func checkArguments(args []protocol.Value, maxDepth int) error {
	for i, a := range args {
		d, err := a.Depth()
		if err != nil {
			return &apiError{kind: errInvalid, msg: fmt.Sprintf("argument %d is not a valid value", i), err: err}
		}
		if d > maxDepth {
			return invalid("argument %d nests arrays and objects %d deep; at most %d is allowed", i, d, maxDepth)
		}
	}
	return nil
}

// checkFrameMessage decodes a pre-framed message of the binary body the way its
// recipients will, so that a frame they would reject is refused here instead.
func checkFrameMessage(name string, frame []byte, maxDepth int) error {
	proto, ok := protocol.Lookup(name)
	if !ok {
		return nil // no client speaks it; nobody receives it
	}
	d := protocol.NewDecoder(proto, len(frame)+16)
	d.Write(frame)
	for {
		m, err := d.Next()
		if err != nil {
			return &apiError{kind: errInvalid, msg: fmt.Sprintf("binary body: the %s frame is not a valid message", name), err: err}
		}
		if m == nil {
			return nil
		}
		if inv, ok := m.(*protocol.Invocation); ok {
			if err := checkArguments(inv.Arguments, maxDepth); err != nil {
				return err
			}
		}
	}
}

// undeliverableText names the cause without quoting the input.
func undeliverableText(err error) string {
	if errors.Is(err, protocol.ErrInvalidMessage) {
		s := err.Error()
		if i := strings.LastIndex(s, "protocol: invalid message: "); i >= 0 {
			return s[i+len("protocol: invalid message: "):]
		}
	}
	return "it cannot be encoded"
}

// readBody reads a non-empty body within maxBytes and reports whether it is the
// binary multi-protocol form.
func readBody(w http.ResponseWriter, r *http.Request, maxBytes int64) (data []byte, binary bool, err error) {
	binary, err = bodyKind(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, false, err
	}
	if r.ContentLength > maxBytes {
		return nil, false, newErr(errTooLarge, "request body is larger than %d bytes", maxBytes)
	}
	if r.ContentLength > 0 {
		// net/http ends the body at its Content-Length: read it into a buffer of that
		// size, without MaxBytesReader and ReadAll's growing buffer (two allocations).
		data = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, data); err != nil {
			return nil, false, &apiError{kind: errInvalid, msg: "cannot read request body", err: err}
		}
	} else {
		data, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, false, newErr(errTooLarge, "request body is larger than %d bytes", maxBytes)
		}
		return nil, false, &apiError{kind: errInvalid, msg: "cannot read request body", err: err}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, false, invalid(msgBodyRequired)
	}
	return data, binary, nil
}

// bodyKind reports whether the body is the binary multi-protocol form. A missing
// content type is taken as JSON, as the emulator does.
func bodyKind(contentType string) (binary bool, err error) {
	switch contentType {
	case "application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8":
		// What the SDKs send, without mime.ParseMediaType's allocations.
		return false, nil
	}
	if strings.TrimSpace(contentType) == "" {
		return false, nil
	}
	mt, _, perr := mime.ParseMediaType(contentType)
	if perr != nil {
		return false, newErr(errUnsupportedMediaType, "unsupported content type")
	}
	switch {
	case mt == "application/json", mt == "text/json", mt == "text/plain", strings.HasSuffix(mt, "+json"):
		return false, nil
	case mt == "application/octet-stream":
		return true, nil
	case mt == "application/x-msgpack":
		return false, newErr(errUnsupportedMediaType, "application/x-msgpack bodies are not supported; use application/json or application/octet-stream")
	default:
		return false, newErr(errUnsupportedMediaType, "unsupported content type %q", mt)
	}
}

// parseJSONPayload parses a PayloadMessage into an Invocation without an
// invocation id. Arguments stay raw JSON values, converted lazily when a
// MessagePack client needs them.
func parseJSONPayload(data []byte) (*protocol.Invocation, error) {
	// Some writers prefix UTF-8 JSON with a byte order mark; encoding/json rejects it.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	pm, ok := scanPayload(data)
	if !ok {
		// A variable of its own: pm itself would escape to the heap on every call.
		var full payloadMessage // not what scanPayload filled in before it gave up
		if err := json.Unmarshal(data, &full); err != nil {
			return nil, &apiError{kind: errInvalid, msg: "request body is not a valid message: " + jsonErrText(err)}
		}
		pm = full
	}
	if pm.Target == nil || *pm.Target == "" {
		return nil, invalid("The target field is required.")
	}
	args := make([]protocol.Value, len(pm.Arguments))
	for i, raw := range pm.Arguments {
		if len(raw) == 0 { // a JSON null element, depending on the decoder's path
			raw = json.RawMessage("null")
		}
		args[i] = protocol.JSONValue(raw)
	}
	return &protocol.Invocation{Target: *pm.Target, Arguments: args}, nil
}

// scanPayload decodes the usual shape of a PayloadMessage without encoding/json's
// reflection (about 15 allocations): valid JSON, an object whose member names are
// plain ASCII without escapes, a target that is null or a string without escapes in
// valid UTF-8, and arguments that are null or an array; other members are skipped.
// It gives what json.Unmarshal would (FuzzScanPayload checks that). ok is false for
// anything else, which json.Unmarshal then decodes with its own errors, Unicode case
// folding of names and string unescaping.
func scanPayload(data []byte) (pm payloadMessage, ok bool) {
	if !json.Valid(data) {
		return pm, false
	}
	ok = true
	isObject := jsonscan.Members(data, func(name, value []byte) {
		name = name[1 : len(name)-1]
		if !ok || !plainASCII(name) {
			ok = false
			return
		}
		// Repeated members: the last wins, as in encoding/json.
		switch {
		case bytes.EqualFold(name, []byte("target")):
			switch value[0] {
			case 'n':
				pm.Target = nil
			case '"':
				s := value[1 : len(value)-1]
				if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
					ok = false
					return
				}
				t := string(s)
				pm.Target = &t
			default:
				ok = false
			}
		case bytes.EqualFold(name, []byte("arguments")):
			switch value[0] {
			case 'n':
				pm.Arguments = nil
			case '[':
				pm.Arguments, _ = jsonscan.Elements(value)
			default:
				ok = false
			}
		}
	})
	return pm, ok && isObject
}

// plainASCII reports whether b has only ASCII characters and no escapes.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf || c == '\\' {
			return false
		}
	}
	return true
}

// jsonErrText keeps decoder messages (offsets, expected types) but not the input.
func jsonErrText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must not be %s", te.Field, te.Value)
	default:
		return "invalid JSON"
	}
}

// maxFrameProtocols bounds the map so a hostile body cannot make us loop over
// millions of tiny entries; the SDK sends one entry per hub protocol.
const maxFrameProtocols = 16

// parseFramesPayload parses the octet-stream body: a MessagePack map from protocol
// name to the complete framed message in that protocol. Keys and values may be
// str or bin. Frames are checked to be whole, so a client never receives a torn one.
func parseFramesPayload(data []byte) (map[string][]byte, error) {
	n, rest, err := msgp.ReadMapHeaderBytes(data)
	if err != nil {
		return nil, &apiError{kind: errInvalid, msg: "binary body must be a MessagePack map of protocol name to frame", err: err}
	}
	if n == 0 {
		return nil, invalid(msgBodyRequired)
	}
	if n > maxFrameProtocols {
		return nil, invalid("binary body has %d protocols, at most %d are allowed", n, maxFrameProtocols)
	}
	frames := make(map[string][]byte, n)
	for range n {
		var key, val []byte
		if key, rest, err = readStrOrBin(rest); err != nil {
			return nil, &apiError{kind: errInvalid, msg: "binary body: protocol name must be a string", err: err}
		}
		if val, rest, err = readStrOrBin(rest); err != nil {
			return nil, &apiError{kind: errInvalid, msg: "binary body: frame must be binary", err: err}
		}
		name := string(key)
		if err := checkFrame(name, val); err != nil {
			return nil, err
		}
		frames[name] = val
	}
	if len(rest) != 0 {
		return nil, invalid("binary body has %d trailing bytes", len(rest))
	}
	return frames, nil
}

func readStrOrBin(b []byte) (v, rest []byte, err error) {
	switch msgp.NextType(b) {
	case msgp.StrType:
		return msgp.ReadStringZC(b)
	case msgp.BinType:
		return msgp.ReadBytesZC(b)
	default:
		return nil, b, errors.New("expected str or bin")
	}
}

// checkFrame verifies that a pre-framed value is whole in its protocol: JSON text
// ends with the 0x1E record separator; MessagePack is a sequence of VarInt
// length-prefixed messages that exactly covers the value.
func checkFrame(name string, frame []byte) error {
	if len(frame) == 0 {
		return invalid("binary body: empty frame for protocol %q", name)
	}
	switch name {
	case "json":
		if len(frame) < 2 || frame[len(frame)-1] != 0x1e {
			return invalid("binary body: json frame must end with the 0x1E record separator")
		}
	case "messagepack":
		for b := frame; len(b) > 0; {
			size, n := uvarint(b)
			if n <= 0 || size == 0 || size > uint64(len(b)-n) {
				return invalid("binary body: messagepack frame has a bad length prefix")
			}
			b = b[n+int(size):]
		}
	}
	return nil
}

// uvarint decodes the SignalR length prefix (7 bits per byte, at most 5 bytes).
// n <= 0 means malformed or incomplete.
func uvarint(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 5; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, -1
}
