package protocol

import (
	"fmt"
	"math"

	"github.com/tinylib/msgp/msgp"
)

type msgpackProtocol struct{}

// MessagePack returns the MessagePack hub protocol (binary transfer format, messages
// prefixed by their VarInt length).
func MessagePack() Protocol { return msgpackProtocol{} }

func (msgpackProtocol) Name() string { return "messagepack" }
func (msgpackProtocol) Version() int { return 2 }
func (msgpackProtocol) Binary() bool { return true }

func (p msgpackProtocol) AppendFrame(dst []byte, m Message) ([]byte, error) {
	// Reserve one length byte, the common case for small messages; longer bodies
	// are shifted once to make room for the longer prefix.
	start := len(dst)
	dst, err := p.AppendUnframed(append(dst, 0), m)
	if err != nil {
		return dst[:start], err
	}
	n := len(dst) - start - 1
	if n > math.MaxInt32 {
		return dst[:start], fmt.Errorf("protocol: message of %d bytes too large to frame", n)
	}
	var buf [5]byte
	prefix := AppendVarInt(buf[:0], n)
	if extra := len(prefix) - 1; extra > 0 {
		dst = append(dst, buf[:extra]...)
		copy(dst[start+len(prefix):], dst[start+1:start+1+n])
	}
	copy(dst[start:], prefix)
	return dst, nil
}

func (msgpackProtocol) AppendUnframed(dst []byte, m Message) ([]byte, error) {
	var f fields
	if err := flatten(m, &f); err != nil {
		return dst, err
	}
	if err := f.checkEncode(); err != nil {
		return dst, err
	}
	n := len(dst)
	dst, err := appendMsgpackMessage(dst, &f)
	if err != nil {
		return dst[:n], fmt.Errorf("protocol: encode %v as MessagePack: %w", f.typ, err)
	}
	return dst, nil
}

// ParseUnframed parses one MessagePack message (a bare array without length
// prefix). The result does not reference data.
func (msgpackProtocol) ParseUnframed(data []byte) (Message, error) {
	return parseMsgpackMessage(data)
}

func appendMsgpackHeaders(dst []byte, h map[string]string) []byte {
	dst = msgp.AppendMapHeader(dst, uint32(len(h)))
	if len(h) == 0 {
		return dst
	}
	var buf [8]string
	for _, k := range sortedKeys(h, buf[:0]) {
		dst = msgp.AppendString(dst, k)
		dst = msgp.AppendString(dst, h[k])
	}
	return dst
}

func appendMsgpackMessage(dst []byte, f *fields) ([]byte, error) {
	var err error
	switch f.typ {
	case InvocationType, StreamInvocationType:
		n := uint32(5)
		if len(f.streamIDs) > 0 {
			n = 6
		}
		dst = msgp.AppendArrayHeader(dst, n)
		dst = msgp.AppendInt64(dst, int64(f.typ))
		dst = appendMsgpackHeaders(dst, f.headers)
		if f.hasID {
			dst = msgp.AppendString(dst, f.id)
		} else {
			dst = msgp.AppendNil(dst)
		}
		dst = msgp.AppendString(dst, f.target)
		dst = msgp.AppendArrayHeader(dst, uint32(len(f.args)))
		for i := range f.args {
			if dst, err = f.args[i].appendMsgpack(dst); err != nil {
				return dst, fmt.Errorf("argument %d: %w", i, err)
			}
		}
		if n == 6 {
			dst = msgp.AppendArrayHeader(dst, uint32(len(f.streamIDs)))
			for _, s := range f.streamIDs {
				dst = msgp.AppendString(dst, s)
			}
		}
	case StreamItemType:
		dst = append(dst, 0x94, byte(StreamItemType))
		dst = appendMsgpackHeaders(dst, f.headers)
		dst = msgp.AppendString(dst, f.id)
		if dst, err = f.item.appendMsgpack(dst); err != nil {
			return dst, fmt.Errorf("item: %w", err)
		}
	case CompletionType:
		switch {
		case f.hasErr:
			dst = append(dst, 0x95, byte(CompletionType))
		case f.hasItem:
			dst = append(dst, 0x95, byte(CompletionType))
		default:
			dst = append(dst, 0x94, byte(CompletionType))
		}
		dst = appendMsgpackHeaders(dst, f.headers)
		dst = msgp.AppendString(dst, f.id)
		switch {
		case f.hasErr:
			dst = append(dst, 1)
			dst = msgp.AppendString(dst, f.err)
		case f.hasItem:
			dst = append(dst, 3)
			if dst, err = f.item.appendMsgpack(dst); err != nil {
				return dst, fmt.Errorf("result: %w", err)
			}
		default:
			dst = append(dst, 2)
		}
	case CancelInvocationType:
		dst = append(dst, 0x93, byte(CancelInvocationType))
		dst = appendMsgpackHeaders(dst, f.headers)
		dst = msgp.AppendString(dst, f.id)
	case PingType:
		dst = append(dst, 0x91, byte(PingType))
	case CloseType:
		dst = append(dst, 0x93, byte(CloseType))
		if f.err != "" {
			dst = msgp.AppendString(dst, f.err)
		} else {
			dst = msgp.AppendNil(dst)
		}
		dst = msgp.AppendBool(dst, f.allowReconnect)
	case AckType, SequenceType:
		dst = append(dst, 0x92, byte(f.typ))
		dst = msgp.AppendInt64(dst, f.seq)
	default:
		return dst, fmt.Errorf("unknown message type %d", f.typ)
	}
	return dst, nil
}

// mpReader walks a message array, turning msgp errors into descriptive ones.
type mpReader struct {
	b    []byte // whole message, for offsets
	r    []byte // unread rest
	left uint32 // array elements not read yet
}

func (m *mpReader) off() int { return len(m.b) - len(m.r) }

func (m *mpReader) fail(field string, err error) error {
	return fmt.Errorf("%w: MessagePack field %s at offset %d: %v", ErrInvalidMessage, field, m.off(), err)
}

// need checks that the array has another element for field.
func (m *mpReader) need(field string) error {
	if m.left == 0 {
		return fmt.Errorf("%w: MessagePack message array too short: missing %s", ErrInvalidMessage, field)
	}
	m.left--
	return nil
}

func (m *mpReader) int64(field string) (int64, error) {
	if err := m.need(field); err != nil {
		return 0, err
	}
	n, r, err := msgp.ReadInt64Bytes(m.r)
	if err != nil {
		return 0, m.fail(field, err)
	}
	m.r = r
	return n, nil
}

func (m *mpReader) bool(field string) (bool, error) {
	if err := m.need(field); err != nil {
		return false, err
	}
	v, r, err := msgp.ReadBoolBytes(m.r)
	if err != nil {
		return false, m.fail(field, err)
	}
	m.r = r
	return v, nil
}

// string reads a str, or nil when nilOK (reported as ok == false).
func (m *mpReader) string(field string, nilOK bool) (s string, ok bool, err error) {
	if err := m.need(field); err != nil {
		return "", false, err
	}
	if nilOK && msgp.IsNil(m.r) {
		m.r = m.r[1:]
		return "", false, nil
	}
	s, r, err := msgp.ReadStringBytes(m.r)
	if err != nil {
		return "", false, m.fail(field, err)
	}
	m.r = r
	return s, true, nil
}

func (m *mpReader) headers() (map[string]string, error) {
	if err := m.need("headers"); err != nil {
		return nil, err
	}
	if msgp.IsNil(m.r) {
		m.r = m.r[1:]
		return nil, nil
	}
	n, r, err := msgp.ReadMapHeaderBytes(m.r)
	if err != nil {
		return nil, m.fail("headers", err)
	}
	m.r = r
	if n == 0 {
		return nil, nil
	}
	h := make(map[string]string, min(int(n), len(r)/2))
	for ; n > 0; n-- {
		k, r, err := msgp.ReadStringBytes(m.r)
		if err != nil {
			return nil, m.fail("header name", err)
		}
		v, r, err := msgp.ReadStringBytes(r)
		if err != nil {
			return nil, m.fail("header "+k, err)
		}
		m.r = r
		h[k] = v
	}
	return h, nil
}

// value reads one object as a Value still referencing the message bytes.
func (m *mpReader) value(field string) (Value, error) {
	if err := m.need(field); err != nil {
		return Value{}, err
	}
	end, err := skipMsgpack(m.r, 0, 1)
	if err != nil {
		return Value{}, m.fail(field, err)
	}
	v := Value{raw: m.r[:end:end], kind: kindMsgpack}
	m.r = m.r[end:]
	return v, nil
}

func (m *mpReader) stringArray(field string) ([]string, error) {
	if err := m.need(field); err != nil {
		return nil, err
	}
	n, r, err := msgp.ReadArrayHeaderBytes(m.r)
	if err != nil {
		return nil, m.fail(field, err)
	}
	m.r = r
	if n == 0 {
		return nil, nil
	}
	out := make([]string, 0, min(int(n), len(r)))
	for ; n > 0; n-- {
		s, r, err := msgp.ReadStringBytes(m.r)
		if err != nil {
			return nil, m.fail(field, err)
		}
		m.r = r
		out = append(out, s)
	}
	return out, nil
}

func (m *mpReader) arguments() ([]Value, error) {
	if err := m.need("arguments"); err != nil {
		return nil, err
	}
	n, r, err := msgp.ReadArrayHeaderBytes(m.r)
	if err != nil {
		return nil, m.fail("arguments", err)
	}
	m.r = r
	// Each argument takes at least one byte: never trust the count for the capacity.
	args := make([]Value, 0, min(int(n), len(r)))
	inner := mpReader{b: m.b, r: m.r, left: n}
	for range n {
		v, err := inner.value("argument")
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	m.r = inner.r
	return args, nil
}

func parseMsgpackMessage(b []byte) (Message, error) {
	n, r, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: MessagePack message is not an array: %v", ErrInvalidMessage, err)
	}
	m := mpReader{b: b, r: r, left: n}
	t, err := m.int64("type")
	if err != nil {
		return nil, err
	}
	if t < math.MinInt32 || t > math.MaxInt32 {
		return nil, fmt.Errorf("%w: message type %d out of range", ErrInvalidMessage, t)
	}
	f := fields{typ: MessageType(t)}
	switch f.typ {
	case InvocationType, StreamInvocationType:
		if f.headers, err = m.headers(); err != nil {
			return nil, err
		}
		if f.id, f.hasID, err = m.string("invocationId", f.typ == InvocationType); err != nil {
			return nil, err
		}
		if f.target, _, err = m.string("target", false); err != nil {
			return nil, err
		}
		if f.args, err = m.arguments(); err != nil {
			return nil, err
		}
		if m.left > 0 {
			if f.streamIDs, err = m.stringArray("streamIds"); err != nil {
				return nil, err
			}
		}
	case StreamItemType:
		if f.headers, err = m.headers(); err != nil {
			return nil, err
		}
		if f.id, f.hasID, err = m.string("invocationId", false); err != nil {
			return nil, err
		}
		if f.item, err = m.value("item"); err != nil {
			return nil, err
		}
		f.hasItem = true
	case CompletionType:
		if f.headers, err = m.headers(); err != nil {
			return nil, err
		}
		if f.id, f.hasID, err = m.string("invocationId", false); err != nil {
			return nil, err
		}
		kind, err := m.int64("resultKind")
		if err != nil {
			return nil, err
		}
		switch kind {
		case 1:
			if f.err, _, err = m.string("error", false); err != nil {
				return nil, err
			}
			f.hasErr = true
		case 2:
		case 3:
			if f.item, err = m.value("result"); err != nil {
				return nil, err
			}
			f.hasItem = true
		default:
			return nil, fmt.Errorf("%w: Completion: invalid result kind %d", ErrInvalidMessage, kind)
		}
	case CancelInvocationType:
		if f.headers, err = m.headers(); err != nil {
			return nil, err
		}
		if f.id, f.hasID, err = m.string("invocationId", false); err != nil {
			return nil, err
		}
	case PingType:
	case CloseType:
		if f.err, _, err = m.string("error", true); err != nil {
			return nil, err
		}
		if m.left > 0 {
			if f.allowReconnect, err = m.bool("allowReconnect"); err != nil {
				return nil, err
			}
		}
	case AckType, SequenceType:
		if f.seq, err = m.int64("sequenceId"); err != nil {
			return nil, err
		}
	default:
		// Unknown types are ignored by receivers; their layout is not ours to check.
		return &Unknown{TypeID: int(t)}, nil
	}
	// Later protocol versions may append elements: skip them, but they must be valid.
	for ; m.left > 0; m.left-- {
		end, err := skipMsgpack(m.r, 0, 1)
		if err != nil {
			return nil, m.fail("extra element", err)
		}
		m.r = m.r[end:]
	}
	if len(m.r) > 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after MessagePack message", ErrInvalidMessage, len(m.r))
	}
	ownValues(&f)
	return f.message()
}
