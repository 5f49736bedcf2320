package protocol

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

type jsonProtocol struct{}

// JSON returns the JSON hub protocol (text transfer format, messages end with 0x1E).
func JSON() Protocol { return jsonProtocol{} }

func (jsonProtocol) Name() string { return "json" }
func (jsonProtocol) Version() int { return 2 }
func (jsonProtocol) Binary() bool { return false }

func (p jsonProtocol) AppendFrame(dst []byte, m Message) ([]byte, error) {
	dst, err := p.AppendUnframed(dst, m)
	if err != nil {
		return dst, err
	}
	return append(dst, RecordSeparator), nil
}

func (jsonProtocol) AppendUnframed(dst []byte, m Message) ([]byte, error) {
	var f fields
	if err := flatten(m, &f); err != nil {
		return dst, err
	}
	if err := f.checkEncode(); err != nil {
		return dst, err
	}
	n := len(dst)
	dst, err := appendJSONMessage(dst, &f)
	if err != nil {
		return dst[:n], fmt.Errorf("protocol: encode %v as JSON: %w", f.typ, err)
	}
	return dst, nil
}

// ParseUnframed parses one JSON message; a trailing 0x1E is tolerated. The result
// does not reference data.
func (jsonProtocol) ParseUnframed(data []byte) (Message, error) {
	e := len(data)
	for e > 0 && isWS(data[e-1]) {
		e--
	}
	if e > 0 && data[e-1] == RecordSeparator {
		e--
	}
	return parseJSONMessage(data[:e])
}

func appendJSONMessage(dst []byte, f *fields) ([]byte, error) {
	dst = append(dst, `{"type":`...)
	dst = strconv.AppendInt(dst, int64(f.typ), 10)
	switch f.typ {
	case PingType:
	case CloseType:
		if f.err != "" {
			dst = append(dst, `,"error":`...)
			dst = appendQuoted(dst, f.err)
		}
		if f.allowReconnect {
			dst = append(dst, `,"allowReconnect":true`...)
		}
	case AckType, SequenceType:
		dst = append(dst, `,"sequenceId":`...)
		dst = strconv.AppendInt(dst, f.seq, 10)
	default:
		if len(f.headers) > 0 {
			dst = append(dst, `,"headers":{`...)
			var buf [8]string
			for i, k := range sortedKeys(f.headers, buf[:0]) {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendQuoted(dst, k)
				dst = append(dst, ':')
				dst = appendQuoted(dst, f.headers[k])
			}
			dst = append(dst, '}')
		}
		if f.hasID {
			dst = append(dst, `,"invocationId":`...)
			dst = appendQuoted(dst, f.id)
		}
		var err error
		switch f.typ {
		case InvocationType, StreamInvocationType:
			dst = append(dst, `,"target":`...)
			dst = appendQuoted(dst, f.target)
			dst = append(dst, `,"arguments":[`...)
			for i := range f.args {
				if i > 0 {
					dst = append(dst, ',')
				}
				if dst, err = f.args[i].appendJSON(dst); err != nil {
					return dst, fmt.Errorf("argument %d: %w", i, err)
				}
			}
			dst = append(dst, ']')
			if len(f.streamIDs) > 0 {
				dst = append(dst, `,"streamIds":[`...)
				for i, s := range f.streamIDs {
					if i > 0 {
						dst = append(dst, ',')
					}
					dst = appendQuoted(dst, s)
				}
				dst = append(dst, ']')
			}
		case StreamItemType:
			dst = append(dst, `,"item":`...)
			if dst, err = f.item.appendJSON(dst); err != nil {
				return dst, fmt.Errorf("item: %w", err)
			}
		case CompletionType:
			if f.hasErr {
				dst = append(dst, `,"error":`...)
				dst = appendQuoted(dst, f.err)
			} else if f.hasItem {
				dst = append(dst, `,"result":`...)
				if dst, err = f.item.appendJSON(dst); err != nil {
					return dst, fmt.Errorf("result: %w", err)
				}
			}
		}
	}
	return append(dst, '}'), nil
}

// sortedKeys returns the keys of h in order, so that encodings are deterministic.
func sortedKeys(h map[string]string, buf []string) []string {
	for k := range h {
		buf = append(buf, k)
	}
	if len(buf) > 1 {
		slices.Sort(buf)
	}
	return buf
}

// parseJSONMessage parses one JSON message (without the record separator). Unknown
// properties are skipped; property names are case-sensitive, as in ASP.NET Core.
func parseJSONMessage(d []byte) (Message, error) {
	var (
		f             fields
		hasType       bool
		item, result  Value
		hasIt, hasRes bool
		argBuf        [8]Value // collects arguments without growing a heap slice
		args          = argBuf[:0]
		hasArgs       bool
	)
	f.seq = -1
	end, err := forEachProperty(d, 0, func(key []byte, escaped bool, i int) (int, error) {
		switch {
		case keyIs(key, escaped, "type"):
			n, end, err := parseInt(d, i)
			if err != nil {
				return 0, fmt.Errorf("property type: %w", err)
			}
			if n < math.MinInt32 || n > math.MaxInt32 {
				return 0, fmt.Errorf("%w: message type %d out of range", ErrInvalidMessage, n)
			}
			f.typ, hasType = MessageType(n), true
			return end, nil
		case keyIs(key, escaped, "headers"):
			return parseJSONHeaders(d, i, &f)
		case keyIs(key, escaped, "invocationId"):
			if d[i] == 'n' {
				f.id, f.hasID = "", false
				return scanLiteral(d, i, "null")
			}
			s, end, err := parseString(d, i)
			if err != nil {
				return 0, fmt.Errorf("property invocationId: %w", err)
			}
			f.id, f.hasID = s, true
			return end, nil
		case keyIs(key, escaped, "target"):
			s, end, err := parseString(d, i)
			if err != nil {
				return 0, fmt.Errorf("property target: %w", err)
			}
			f.target = s
			return end, nil
		case keyIs(key, escaped, "arguments"):
			hasArgs, args = true, args[:0]
			end, err := forEachElement(d, i, func(vi int) (int, error) {
				end, err := scanValue(d, vi, 1)
				if err != nil {
					return 0, err
				}
				args = append(args, Value{raw: d[vi:end], kind: kindJSON})
				return end, nil
			})
			if err != nil {
				return 0, fmt.Errorf("property arguments: %w", err)
			}
			return end, nil
		case keyIs(key, escaped, "streamIds"):
			return parseJSONStreamIDs(d, i, &f)
		case keyIs(key, escaped, "item"):
			end, err := scanValue(d, i, 1)
			if err != nil {
				return 0, fmt.Errorf("property item: %w", err)
			}
			item, hasIt = Value{raw: d[i:end], kind: kindJSON}, true
			return end, nil
		case keyIs(key, escaped, "result"):
			end, err := scanValue(d, i, 1)
			if err != nil {
				return 0, fmt.Errorf("property result: %w", err)
			}
			result, hasRes = Value{raw: d[i:end], kind: kindJSON}, true
			return end, nil
		case keyIs(key, escaped, "error"):
			if d[i] == 'n' {
				f.err, f.hasErr = "", false
				return scanLiteral(d, i, "null")
			}
			s, end, err := parseString(d, i)
			if err != nil {
				return 0, fmt.Errorf("property error: %w", err)
			}
			f.err, f.hasErr = s, true
			return end, nil
		case keyIs(key, escaped, "allowReconnect"):
			switch d[i] {
			case 't':
				f.allowReconnect = true
				return scanLiteral(d, i, "true")
			case 'f':
				f.allowReconnect = false
				return scanLiteral(d, i, "false")
			case 'n':
				return scanLiteral(d, i, "null")
			}
			return 0, jsonErr(d, i, "boolean allowReconnect")
		case keyIs(key, escaped, "sequenceId"):
			n, end, err := parseInt(d, i)
			if err != nil {
				return 0, fmt.Errorf("property sequenceId: %w", err)
			}
			f.seq = n
			return end, nil
		}
		return scanValue(d, i, 0)
	})
	if err != nil {
		return nil, err
	}
	if end = skipWS(d, end); end != len(d) {
		return nil, fmt.Errorf("%w: trailing data after JSON message at offset %d", ErrInvalidMessage, end)
	}
	if !hasType {
		return nil, fmt.Errorf("%w: missing required property type", ErrInvalidMessage)
	}
	switch f.typ {
	case StreamItemType:
		f.item, f.hasItem = item, hasIt
	case CompletionType:
		f.item, f.hasItem = result, hasRes
		if hasRes && f.hasErr {
			return nil, fmt.Errorf("%w: Completion: both result and error", ErrInvalidMessage)
		}
	}
	if hasArgs {
		f.args = append(make([]Value, 0, len(args)), args...)
	}
	ownValues(&f)
	return f.message()
}

// ownValues copies the bytes of all values of f into one new allocation, so the
// message does not pin or alias the input buffer.
func ownValues(f *fields) {
	total := len(f.item.raw)
	for _, a := range f.args {
		total += len(a.raw)
	}
	if total == 0 {
		return
	}
	arena := make([]byte, 0, total)
	for i := range f.args {
		n := len(arena)
		arena = append(arena, f.args[i].raw...)
		f.args[i].raw = arena[n:len(arena):len(arena)]
	}
	if f.item.raw != nil {
		n := len(arena)
		arena = append(arena, f.item.raw...)
		f.item.raw = arena[n:len(arena):len(arena)]
	}
}

func parseJSONHeaders(d []byte, i int, f *fields) (int, error) {
	if d[i] == 'n' {
		f.headers = nil
		return scanLiteral(d, i, "null")
	}
	f.headers = nil
	end, err := forEachProperty(d, i, func(key []byte, escaped bool, vi int) (int, error) {
		k := string(key)
		if escaped {
			k = string(appendUnescaped(nil, key))
		}
		v, end, err := parseString(d, vi)
		if err != nil {
			return 0, fmt.Errorf("header %q: %w", k, err)
		}
		if f.headers == nil {
			f.headers = make(map[string]string)
		}
		f.headers[k] = v
		return end, nil
	})
	if err != nil {
		return 0, fmt.Errorf("property headers: %w", err)
	}
	return end, nil
}

// forEachElement walks the JSON array at d[i] and calls fn with the offset of each
// element; fn returns the offset after it.
func forEachElement(d []byte, i int, fn func(vi int) (int, error)) (int, error) {
	if i >= len(d) || d[i] != '[' {
		return 0, jsonErr(d, i, "'['")
	}
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == ']' {
		return i + 1, nil
	}
	for {
		if i >= len(d) {
			return 0, jsonErr(d, i, "value")
		}
		var err error
		if i, err = fn(i); err != nil {
			return 0, err
		}
		i = skipWS(d, i)
		if i < len(d) && d[i] == ',' {
			i = skipWS(d, i+1)
			continue
		}
		if i < len(d) && d[i] == ']' {
			return i + 1, nil
		}
		return 0, jsonErr(d, i, "',' or ']'")
	}
}

func parseJSONStreamIDs(d []byte, i int, f *fields) (int, error) {
	f.streamIDs = nil
	if d[i] == 'n' {
		return scanLiteral(d, i, "null")
	}
	end, err := forEachElement(d, i, func(vi int) (int, error) {
		s, end, err := parseString(d, vi)
		if err != nil {
			return 0, err
		}
		f.streamIDs = append(f.streamIDs, s)
		return end, nil
	})
	if err != nil {
		return 0, fmt.Errorf("property streamIds: %w", err)
	}
	return end, nil
}
