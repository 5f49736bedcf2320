package protocol

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// Conversion between JSON text and MessagePack objects, appending to a caller's
// buffer so that writing a frame converts arguments without intermediate copies.

type mpClass uint8

const (
	mpNil mpClass = iota
	mpBool
	mpInt
	mpUint
	mpFloat32
	mpFloat64
	mpStr
	mpBin
	mpArray
	mpMap
	mpExt
)

// mpHead describes the MessagePack object header at some offset.
type mpHead struct {
	class mpClass
	hlen  int    // header bytes (for ext: including the type byte)
	size  uint64 // payload bytes (scalars, str, bin, ext) or element count (array, map: pairs)
	ext   int8
}

func mpErr(b []byte, i int, what string) error {
	if i >= len(b) {
		return fmt.Errorf("%w: unexpected end of MessagePack data, expected %s", ErrInvalidMessage, what)
	}
	return fmt.Errorf("%w: invalid MessagePack byte 0x%02x at offset %d, expected %s", ErrInvalidMessage, b[i], i, what)
}

// readHead decodes the header at b[i] and checks that the header (not the payload)
// is complete.
func readHead(b []byte, i int) (mpHead, error) {
	if i >= len(b) {
		return mpHead{}, mpErr(b, i, "object")
	}
	c := b[i]
	var h mpHead
	var ln int // width of a big-endian length following the lead byte
	switch {
	case c <= 0x7f:
		return mpHead{class: mpInt, hlen: 1}, nil
	case c >= 0xe0:
		return mpHead{class: mpInt, hlen: 1}, nil
	case c <= 0x8f:
		return mpHead{class: mpMap, hlen: 1, size: uint64(c & 0x0f)}, nil
	case c <= 0x9f:
		return mpHead{class: mpArray, hlen: 1, size: uint64(c & 0x0f)}, nil
	case c <= 0xbf:
		return mpHead{class: mpStr, hlen: 1, size: uint64(c & 0x1f)}, nil
	}
	switch c {
	case 0xc0:
		return mpHead{class: mpNil, hlen: 1}, nil
	case 0xc2, 0xc3:
		return mpHead{class: mpBool, hlen: 1}, nil
	case 0xc4, 0xc5, 0xc6:
		h.class, ln = mpBin, 1<<(c-0xc4)
	case 0xc7, 0xc8, 0xc9:
		h.class, ln = mpExt, 1<<(c-0xc7)
	case 0xca:
		return mpHead{class: mpFloat32, hlen: 1, size: 4}, nil
	case 0xcb:
		return mpHead{class: mpFloat64, hlen: 1, size: 8}, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		return mpHead{class: mpUint, hlen: 1, size: 1 << (c - 0xcc)}, nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		return mpHead{class: mpInt, hlen: 1, size: 1 << (c - 0xd0)}, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		if i+1 >= len(b) {
			return mpHead{}, mpErr(b, i+1, "extension type")
		}
		return mpHead{class: mpExt, hlen: 2, size: 1 << (c - 0xd4), ext: int8(b[i+1])}, nil
	case 0xd9, 0xda, 0xdb:
		h.class, ln = mpStr, 1<<(c-0xd9)
	case 0xdc, 0xdd:
		h.class, ln = mpArray, 2<<(c-0xdc)
	case 0xde, 0xdf:
		h.class, ln = mpMap, 2<<(c-0xde)
	default: // 0xc1 is never used
		return mpHead{}, mpErr(b, i, "a valid type byte")
	}
	if len(b)-i-1 < ln {
		return mpHead{}, mpErr(b, len(b), "length")
	}
	switch ln {
	case 1:
		h.size = uint64(b[i+1])
	case 2:
		h.size = uint64(binary.BigEndian.Uint16(b[i+1:]))
	case 4:
		h.size = uint64(binary.BigEndian.Uint32(b[i+1:]))
	}
	h.hlen = 1 + ln
	if h.class == mpExt {
		if i+h.hlen >= len(b) {
			return mpHead{}, mpErr(b, len(b), "extension type")
		}
		h.ext = int8(b[i+h.hlen])
		h.hlen++
	}
	return h, nil
}

// payloadEnd returns the end of the payload of a non-container object at b[i].
func payloadEnd(b []byte, i int, h mpHead) (int, error) {
	if uint64(len(b)-i-h.hlen) < h.size {
		return 0, mpErr(b, len(b), "payload bytes")
	}
	return i + h.hlen + int(h.size), nil
}

// skipMsgpack checks one object at b[i] and returns the index after it.
func skipMsgpack(b []byte, i, depth int) (int, error) {
	h, err := readHead(b, i)
	if err != nil {
		return 0, err
	}
	if h.class != mpArray && h.class != mpMap {
		return payloadEnd(b, i, h)
	}
	if depth >= maxDepth {
		return 0, fmt.Errorf("%w: MessagePack nested deeper than %d", ErrInvalidMessage, maxDepth)
	}
	n := h.size
	if h.class == mpMap {
		n *= 2
	}
	i += h.hlen
	for ; n > 0; n-- {
		if i, err = skipMsgpack(b, i, depth+1); err != nil {
			return 0, err
		}
	}
	return i, nil
}

// appendMsgpackAsJSON converts the object at b[i] to JSON text. bin becomes a
// base64 string (as .NET does), timestamps become RFC 3339 strings, maps with
// non-string keys get the keys' JSON text as names, other extensions are errors.
func appendMsgpackAsJSON(dst, b []byte, i, depth int) ([]byte, int, error) {
	h, err := readHead(b, i)
	if err != nil {
		return dst, 0, err
	}
	if h.class == mpArray || h.class == mpMap {
		if depth >= maxDepth {
			return dst, 0, fmt.Errorf("%w: MessagePack nested deeper than %d", ErrInvalidMessage, maxDepth)
		}
		i += h.hlen
		if h.class == mpArray {
			dst = append(dst, '[')
			for k := uint64(0); k < h.size; k++ {
				if k > 0 {
					dst = append(dst, ',')
				}
				if dst, i, err = appendMsgpackAsJSON(dst, b, i, depth+1); err != nil {
					return dst, 0, err
				}
			}
			return append(dst, ']'), i, nil
		}
		dst = append(dst, '{')
		for k := uint64(0); k < h.size; k++ {
			if k > 0 {
				dst = append(dst, ',')
			}
			if dst, i, err = appendMsgpackKey(dst, b, i, depth+1); err != nil {
				return dst, 0, err
			}
			dst = append(dst, ':')
			if dst, i, err = appendMsgpackAsJSON(dst, b, i, depth+1); err != nil {
				return dst, 0, err
			}
		}
		return append(dst, '}'), i, nil
	}
	end, err := payloadEnd(b, i, h)
	if err != nil {
		return dst, 0, err
	}
	p := b[i+h.hlen : end]
	switch h.class {
	case mpNil:
		dst = append(dst, "null"...)
	case mpBool:
		dst = strconv.AppendBool(dst, b[i] == 0xc3)
	case mpInt:
		var n int64
		switch {
		case h.size == 0:
			n = int64(int8(b[i]))
		case h.size == 1:
			n = int64(int8(p[0]))
		case h.size == 2:
			n = int64(int16(binary.BigEndian.Uint16(p)))
		case h.size == 4:
			n = int64(int32(binary.BigEndian.Uint32(p)))
		default:
			n = int64(binary.BigEndian.Uint64(p))
		}
		dst = strconv.AppendInt(dst, n, 10)
	case mpUint:
		var n uint64
		switch h.size {
		case 1:
			n = uint64(p[0])
		case 2:
			n = uint64(binary.BigEndian.Uint16(p))
		case 4:
			n = uint64(binary.BigEndian.Uint32(p))
		default:
			n = binary.BigEndian.Uint64(p)
		}
		dst = strconv.AppendUint(dst, n, 10)
	case mpFloat32:
		dst, err = appendJSONFloat(dst, float64(math.Float32frombits(binary.BigEndian.Uint32(p))), 32)
	case mpFloat64:
		dst, err = appendJSONFloat(dst, math.Float64frombits(binary.BigEndian.Uint64(p)), 64)
	case mpStr:
		dst = appendQuoted(dst, p)
	case mpBin:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, p)
		dst = append(dst, '"')
	case mpExt:
		if h.ext != -1 {
			return dst, 0, fmt.Errorf("%w: MessagePack extension type %d at offset %d has no JSON form", ErrInvalidMessage, h.ext, i)
		}
		var t time.Time
		if t, err = timestamp(p); err == nil {
			dst = append(dst, '"')
			dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
			dst = append(dst, '"')
		}
	}
	if err != nil {
		return dst, 0, fmt.Errorf("%w: at offset %d: %v", ErrInvalidMessage, i, err)
	}
	return dst, end, nil
}

// appendMsgpackKey writes a map key as a JSON property name.
func appendMsgpackKey(dst, b []byte, i, depth int) ([]byte, int, error) {
	h, err := readHead(b, i)
	if err != nil {
		return dst, 0, err
	}
	if h.class == mpStr {
		end, err := payloadEnd(b, i, h)
		if err != nil {
			return dst, 0, err
		}
		return appendQuoted(dst, b[i+h.hlen:end]), end, nil
	}
	n := len(dst)
	dst, end, err := appendMsgpackAsJSON(dst, b, i, depth)
	if err != nil || dst[n] == '"' {
		return dst, end, err
	}
	text := string(dst[n:])
	return appendQuoted(dst[:n], text), end, nil
}

// timestamp decodes the payload of a MessagePack timestamp extension (type -1).
func timestamp(p []byte) (time.Time, error) {
	switch len(p) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(p)), 0), nil
	case 8:
		v := binary.BigEndian.Uint64(p)
		if ns := int64(v >> 34); ns <= 999999999 {
			return time.Unix(int64(v&(1<<34-1)), ns), nil
		}
	case 12:
		if ns := int64(binary.BigEndian.Uint32(p)); ns <= 999999999 {
			return time.Unix(int64(binary.BigEndian.Uint64(p[4:])), ns), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid timestamp extension of %d bytes", len(p))
}

// appendJSONFloat formats f like encoding/json does.
func appendJSONFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, fmt.Errorf("number %v has no JSON form", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const (
	hdrStr = iota
	hdrArray
	hdrMap
)

// reserveHeader makes room for the largest header of a container whose size is not
// known yet; fixHeader writes the real header and closes the gap.
func reserveHeader(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0, 0), len(dst)
}

func fixHeader(dst []byte, start int, n int, kind int) ([]byte, error) {
	if uint64(n) > math.MaxUint32 {
		return dst, fmt.Errorf("%w: value too large for MessagePack", ErrInvalidMessage)
	}
	var buf [5]byte
	var h []byte
	switch kind {
	case hdrArray:
		h = msgp.AppendArrayHeader(buf[:0], uint32(n))
	case hdrMap:
		h = msgp.AppendMapHeader(buf[:0], uint32(n))
	default:
		h = appendStrHeader(buf[:0], n)
	}
	copy(dst[start+len(h):], dst[start+5:])
	copy(dst[start:], h)
	return dst[:len(dst)-5+len(h)], nil
}

func appendStrHeader(dst []byte, n int) []byte {
	switch {
	case n < 32:
		return append(dst, 0xa0|byte(n))
	case n < 256:
		return append(dst, 0xd9, byte(n))
	case n < 65536:
		return append(dst, 0xda, byte(n>>8), byte(n))
	}
	return append(dst, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendJSONString writes the JSON string at d[i] as a MessagePack str.
func appendJSONString(dst, d []byte, i int) ([]byte, int, error) {
	end, escaped, err := scanString(d, i)
	if err != nil {
		return dst, 0, err
	}
	if !escaped {
		return msgp.AppendStringFromBytes(dst, d[i+1:end-1]), end, nil
	}
	dst, start := reserveHeader(dst)
	dst = appendUnescaped(dst, d[i+1:end-1])
	dst, err = fixHeader(dst, start, len(dst)-start-5, hdrStr)
	return dst, end, err
}

// appendJSONAsMsgpack converts the JSON value at d[i] (no leading whitespace):
// objects become maps with string keys, integers that fit int64 become ints, other
// numbers float64.
func appendJSONAsMsgpack(dst, d []byte, i, depth int) ([]byte, int, error) {
	if i >= len(d) {
		return dst, 0, jsonErr(d, i, "value")
	}
	var err error
	switch c := d[i]; {
	case c == '"':
		return appendJSONString(dst, d, i)
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return dst, 0, fmt.Errorf("%w: JSON nested deeper than %d", ErrInvalidMessage, maxDepth)
		}
		closer, kind := byte('}'), hdrMap
		if c == '[' {
			closer, kind = ']', hdrArray
		}
		var start, n int
		dst, start = reserveHeader(dst)
		i = skipWS(d, i+1)
		if i < len(d) && d[i] == closer {
			dst, err = fixHeader(dst, start, 0, kind)
			return dst, i + 1, err
		}
		for {
			if c == '{' {
				if dst, i, err = appendJSONString(dst, d, i); err != nil {
					return dst, 0, err
				}
				i = skipWS(d, i)
				if i >= len(d) || d[i] != ':' {
					return dst, 0, jsonErr(d, i, "':'")
				}
				i = skipWS(d, i+1)
			}
			if dst, i, err = appendJSONAsMsgpack(dst, d, i, depth+1); err != nil {
				return dst, 0, err
			}
			n++
			i = skipWS(d, i)
			if i < len(d) && d[i] == ',' {
				i = skipWS(d, i+1)
				continue
			}
			if i < len(d) && d[i] == closer {
				dst, err = fixHeader(dst, start, n, kind)
				return dst, i + 1, err
			}
			return dst, 0, jsonErr(d, i, "',' or '"+string(closer)+"'")
		}
	case c == 't':
		i, err = scanLiteral(d, i, "true")
		return msgp.AppendBool(dst, true), i, err
	case c == 'f':
		i, err = scanLiteral(d, i, "false")
		return msgp.AppendBool(dst, false), i, err
	case c == 'n':
		i, err = scanLiteral(d, i, "null")
		return msgp.AppendNil(dst), i, err
	case c == '-' || (c >= '0' && c <= '9'):
		end, integer, err := scanNumber(d, i)
		if err != nil {
			return dst, 0, err
		}
		if integer {
			if n, err := strconv.ParseInt(string(d[i:end]), 10, 64); err == nil {
				return msgp.AppendInt64(dst, n), end, nil
			}
		}
		f, err := strconv.ParseFloat(string(d[i:end]), 64)
		if err != nil {
			return dst, 0, fmt.Errorf("%w: number at offset %d out of range", ErrInvalidMessage, i)
		}
		return msgp.AppendFloat64(dst, f), end, nil
	}
	return dst, 0, jsonErr(d, i, "value")
}
