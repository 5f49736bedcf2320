package auth

import (
	"encoding/json"
	"errors"

	"github.com/signalbox-io/signalbox/internal/jsonscan"
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
	return decodeValidObject(data)
}

// decodeValidObject is decodeObject for data known to be valid JSON.
func decodeValidObject(data []byte) (names []string, values []json.RawMessage, err error) {
	if !jsonscan.Members(data, func(name, value []byte) {
		n, _ := jsonString(name)
		names = append(names, n)
		values = append(values, value)
	}) {
		return nil, nil, errNotObject
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
func jsonArray(raw []byte) (elems []json.RawMessage, ok bool) { return jsonscan.Elements(raw) }

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
