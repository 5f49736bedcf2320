package auth

import (
	"encoding/json"
	"errors"
)

// A small scanner over JSON that encoding/json has already validated. It exists
// because encoding/json cannot give an object's members in order with duplicates
// visible, and json.Decoder's token stream costs an allocation per token on a path
// that runs for every connection and REST call.

var errNotObject = errors.New("not a JSON object")

// decodeObject splits one JSON object into its member names (unescaped) and raw
// values, in order, refusing duplicate names: with duplicates, which value counts
// depends on the parser, an ambiguity an attacker can use. Errors never quote the
// input.
func decodeObject(data []byte) (names []string, values []json.RawMessage, err error) {
	if !json.Valid(data) {
		return nil, nil, errors.New("invalid JSON")
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return nil, nil, errNotObject
	}
	i = skipSpace(data, i+1)
	for data[i] != '}' {
		end := valueEnd(data, i) // the member name
		name, _ := jsonString(data[i:end])
		i = skipSpace(data, end)
		i = skipSpace(data, i+1) // past ':'
		end = valueEnd(data, i)
		names = append(names, name)
		values = append(values, data[i:end:end])
		i = skipSpace(data, end)
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if hasDuplicate(names) {
		return nil, nil, errors.New("duplicate member name")
	}
	return names, values, nil
}

func hasDuplicate(names []string) bool {
	if len(names) <= 16 {
		for i := range names {
			for j := i + 1; j < len(names); j++ {
				if names[i] == names[j] {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[string]struct{}, len(names))
	for _, n := range names {
		if _, dup := seen[n]; dup {
			return true
		}
		seen[n] = struct{}{}
	}
	return false
}

// jsonArray splits a valid JSON array into its raw elements; ok is false when raw is
// not an array.
func jsonArray(raw []byte) (elems []json.RawMessage, ok bool) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	i := skipSpace(raw, 1)
	for i < len(raw) && raw[i] != ']' {
		end := valueEnd(raw, i)
		elems = append(elems, raw[i:end:end])
		i = skipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return elems, true
}

// jsonString returns the value of a valid JSON string; ok is false when raw is not a
// string.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c >= 0x80 {
			// Escapes, and invalid UTF-8 (which encoding/json turns into U+FFFD).
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return "", false
			}
			return s, true
		}
	}
	return string(inner), true
}

func skipSpace(data []byte, i int) int {
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

// valueEnd returns the index just past the valid JSON value starting at data[i].
func valueEnd(data []byte, i int) int {
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
				j = valueEnd(data, j) - 1
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
