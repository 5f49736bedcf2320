package protocol

import (
	"encoding/json"
	"fmt"
)

type valueKind uint8

const (
	kindNone valueKind = iota
	kindJSON
	kindMsgpack
	kindBadJSON    // raw is not exactly one JSON value; writing it fails
	kindBadMsgpack // raw is not exactly one MessagePack object; writing it fails
)

// Value is one argument, stream item or result. It keeps the bytes of the protocol
// that produced it and is converted (JSON <-> MessagePack) only when written in the
// other protocol, so relaying in the same protocol copies bytes unchanged.
//
// The zero Value stands for null. A Value is immutable; its bytes must not be
// modified after construction.
type Value struct {
	raw  []byte
	kind valueKind
}

// JSONValue wraps the raw JSON text of one value. Surrounding whitespace is
// trimmed. Invalid JSON is detected here and reported when the Value is written or
// converted.
func JSONValue(raw []byte) Value {
	s := skipWS(raw, 0)
	e := len(raw)
	for e > s && isWS(raw[e-1]) {
		e--
	}
	raw = raw[s:e]
	if end, err := scanValue(raw, 0, 0); err != nil || end != len(raw) {
		return Value{raw: raw, kind: kindBadJSON}
	}
	return Value{raw: raw, kind: kindJSON}
}

// MessagePackValue wraps the raw bytes of one MessagePack object. Bytes that are
// not exactly one object are reported when the Value is written or converted.
func MessagePackValue(raw []byte) Value {
	if end, err := skipMsgpack(raw, 0, 0); err != nil || end != len(raw) {
		return Value{raw: raw, kind: kindBadMsgpack}
	}
	return Value{raw: raw, kind: kindMsgpack}
}

// ValueOf marshals v with encoding/json.
func ValueOf(v any) (Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Value{}, fmt.Errorf("protocol: marshal value: %w", err)
	}
	return Value{raw: b, kind: kindJSON}, nil
}

// IsZero reports whether v is the zero Value (which is written as null).
func (v Value) IsZero() bool { return v.kind == kindNone }

// IsMessagePack reports whether v holds MessagePack bytes (rather than JSON text).
func (v Value) IsMessagePack() bool { return v.kind == kindMsgpack || v.kind == kindBadMsgpack }

// JSON returns v as JSON text, converting from MessagePack if needed. For a Value
// that already holds JSON the returned slice is v's own storage: do not modify it.
func (v Value) JSON() ([]byte, error) {
	if v.kind == kindJSON {
		return v.raw, nil
	}
	return v.appendJSON(nil)
}

// MessagePack returns v as one MessagePack object, converting from JSON if needed.
// For a Value that already holds MessagePack the returned slice is v's own storage:
// do not modify it.
func (v Value) MessagePack() ([]byte, error) {
	if v.kind == kindMsgpack {
		return v.raw, nil
	}
	return v.appendMsgpack(nil)
}

// Decode unmarshals v into dst with encoding/json (after conversion from MessagePack
// if needed).
func (v Value) Decode(dst any) error {
	b, err := v.JSON()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("protocol: decode value: %w", err)
	}
	return nil
}

// String returns the JSON text of v, or a description of the conversion error; it
// is meant for logs and tests.
func (v Value) String() string {
	b, err := v.JSON()
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// appendJSON appends v as JSON text.
func (v Value) appendJSON(dst []byte) ([]byte, error) {
	switch v.kind {
	case kindNone:
		return append(dst, "null"...), nil
	case kindJSON:
		return append(dst, v.raw...), nil
	case kindMsgpack:
		n := len(dst)
		dst, end, err := appendMsgpackAsJSON(dst, v.raw, 0, 0)
		if err == nil && end != len(v.raw) {
			err = fmt.Errorf("%w: trailing bytes after MessagePack value", ErrInvalidMessage)
		}
		if err != nil {
			return dst[:n], fmt.Errorf("protocol: convert MessagePack value to JSON: %w", err)
		}
		return dst, nil
	}
	return dst, v.invalid()
}

// appendMsgpack appends v as one MessagePack object.
func (v Value) appendMsgpack(dst []byte) ([]byte, error) {
	switch v.kind {
	case kindNone:
		return append(dst, 0xc0), nil
	case kindMsgpack:
		return append(dst, v.raw...), nil
	case kindJSON:
		n := len(dst)
		dst, _, err := appendJSONAsMsgpack(dst, v.raw, 0, 0)
		if err != nil {
			return dst[:n], fmt.Errorf("protocol: convert JSON value to MessagePack: %w", err)
		}
		return dst, nil
	}
	return dst, v.invalid()
}

func (v Value) invalid() error {
	if v.kind == kindBadJSON {
		end, err := scanValue(v.raw, 0, 0)
		if err == nil && end != len(v.raw) {
			err = fmt.Errorf("%w: trailing data after JSON value at offset %d", ErrInvalidMessage, end)
		}
		if len(v.raw) == 0 {
			err = fmt.Errorf("%w: empty JSON value", ErrInvalidMessage)
		}
		return fmt.Errorf("protocol: invalid JSON value: %w", err)
	}
	end, err := skipMsgpack(v.raw, 0, 0)
	if err == nil && end != len(v.raw) {
		err = fmt.Errorf("%w: trailing bytes after MessagePack value at offset %d", ErrInvalidMessage, end)
	}
	return fmt.Errorf("protocol: invalid MessagePack value: %w", err)
}

// Depth returns how deeply v nests arrays and maps: 0 for a scalar or null, 1 for
// [1], 2 for [[1]]. A service uses it to refuse arguments deeper than its limit before
// accepting a message it could not deliver. An invalid Value reports its error.
func (v Value) Depth() (int, error) {
	switch v.kind {
	case kindNone:
		return 0, nil
	case kindMsgpack:
		_, d, err := msgpackDepth(v.raw, 0, 0)
		return d, err
	case kindJSON:
	default:
		return 0, v.invalid()
	}
	b := v.raw
	// b is valid JSON: brackets outside strings are the structure.
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest, nil
}

// msgpackDepth returns the index after the object at b[i] and how deeply it nests.
func msgpackDepth(b []byte, i, depth int) (end, deepest int, err error) {
	h, err := readHead(b, i)
	if err != nil {
		return 0, 0, err
	}
	if h.class != mpArray && h.class != mpMap {
		end, err = payloadEnd(b, i, h)
		return end, 0, err
	}
	if depth >= maxDepth {
		return 0, 0, fmt.Errorf("%w: MessagePack nested deeper than %d", ErrInvalidMessage, maxDepth)
	}
	n := h.size
	if h.class == mpMap {
		n *= 2
	}
	i += h.hlen
	for ; n > 0; n-- {
		var d int
		if i, d, err = msgpackDepth(b, i, depth+1); err != nil {
			return 0, 0, err
		}
		deepest = max(deepest, d)
	}
	return i, deepest + 1, nil
}
