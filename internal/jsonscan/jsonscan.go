// Package jsonscan splits JSON that is already known to be valid (json.Valid) into its
// parts without decoding it: the hot paths that need an object's members in order or
// an array's raw elements (token claims on every connect, the body of every REST
// send) use it instead of encoding/json's reflection, which costs an allocation per
// value. Given invalid JSON the results are meaningless, but it does not panic.
package jsonscan

import "encoding/json"

// SkipSpace returns the index of the first byte at or after i that is not JSON
// whitespace (len(data) if there is none).
func SkipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// ValueEnd returns the index just past the valid JSON value starting at data[i].
func ValueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(data)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = ValueEnd(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	}
	for j := i; j < len(data); j++ {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
	}
	return len(data)
}

// Members calls fn with the raw name (a JSON string, quotes and escapes as written)
// and the raw value of each member of the valid JSON value data, in order. It
// reports false, without calling fn, when data is not an object.
func Members(data []byte, fn func(name, value []byte)) bool {
	i := SkipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false
	}
	i = SkipSpace(data, i+1)
	for i < len(data) && data[i] != '}' {
		end := ValueEnd(data, i)
		name := data[i:end:end]
		i = SkipSpace(data, end)
		i = SkipSpace(data, i+1) // past ':'
		if i == len(data) {
			break
		}
		end = ValueEnd(data, i)
		fn(name, data[i:end:end])
		i = SkipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i = SkipSpace(data, i+1)
		}
	}
	return true
}

// Elements returns the raw elements of a valid JSON array (raw starts with '['); ok
// is false when raw is not an array.
func Elements(raw []byte) (elems []json.RawMessage, ok bool) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	i := SkipSpace(raw, 1)
	for i < len(raw) && raw[i] != ']' {
		end := ValueEnd(raw, i)
		if elems == nil {
			elems = make([]json.RawMessage, 0, 4) // most arrays here are short: one allocation
		}
		elems = append(elems, raw[i:end:end])
		i = SkipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = SkipSpace(raw, i+1)
		}
	}
	return elems, true
}
