package protocol

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small allocation-free JSON scanner. encoding/json would need reflection and a
// copy per json.RawMessage; the hub protocol only needs the top-level object split
// into properties, with argument values kept as raw byte ranges.

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(d []byte, i int) int {
	for i < len(d) && isWS(d[i]) {
		i++
	}
	return i
}

func jsonErr(d []byte, i int, what string) error {
	if i >= len(d) {
		return fmt.Errorf("%w: unexpected end of JSON, expected %s", ErrInvalidMessage, what)
	}
	return fmt.Errorf("%w: invalid character %q at offset %d, expected %s", ErrInvalidMessage, d[i], i, what)
}

// scanString checks the string starting at d[i] == '"' and returns the index after
// its closing quote and whether it contains escapes.
func scanString(d []byte, i int) (end int, escaped bool, err error) {
	if i >= len(d) || d[i] != '"' {
		return 0, false, jsonErr(d, i, "string")
	}
	start := i + 1
	ascii := true
	for i = start; i < len(d); i++ {
		c := d[i]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(d[start:i]) {
				return 0, false, fmt.Errorf("%w: invalid UTF-8 in string at offset %d", ErrInvalidMessage, start)
			}
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(d) {
				return 0, false, jsonErr(d, i, "escape")
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(d) {
					return 0, false, jsonErr(d, len(d), "4 hex digits")
				}
				for k := 1; k <= 4; k++ {
					if unhex(d[i+k]) < 0 {
						return 0, false, jsonErr(d, i+k, "hex digit")
					}
				}
				i += 4
			default:
				return 0, false, jsonErr(d, i, "escape character")
			}
		case c < 0x20:
			return 0, false, jsonErr(d, i, "string character (control characters must be escaped)")
		case c >= 0x80:
			ascii = false
		}
	}
	return 0, false, jsonErr(d, i, "closing quote")
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func hex4(b []byte) rune {
	return rune(unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3]))
}

// appendUnescaped appends the decoded content of a string already checked by
// scanString (s excludes the quotes). Lone surrogates become U+FFFD, as in encoding/json.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(s[i+3:])); r2 != utf8.RuneError {
						r = r2
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, s[i])
		}
	}
	return dst
}

// parseString returns the decoded string starting at d[i].
func parseString(d []byte, i int) (string, int, error) {
	end, escaped, err := scanString(d, i)
	if err != nil {
		return "", 0, err
	}
	if !escaped {
		return string(d[i+1 : end-1]), end, nil
	}
	return string(appendUnescaped(make([]byte, 0, end-i-2), d[i+1:end-1])), end, nil
}

// scanNumber checks the JSON number at d[i] and returns its end and whether it is
// an integer (no fraction, no exponent).
func scanNumber(d []byte, i int) (end int, integer bool, err error) {
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return 0, false, jsonErr(d, i, "digit")
	}
	integer = true
	if i < len(d) && d[i] == '.' {
		integer = false
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return 0, false, jsonErr(d, i, "digit after decimal point")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		integer = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return 0, false, jsonErr(d, i, "digit in exponent")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	return i, integer, nil
}

func scanLiteral(d []byte, i int, lit string) (int, error) {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return 0, jsonErr(d, i, lit)
	}
	return i + len(lit), nil
}

// scanValue checks one JSON value starting at d[i] (no leading whitespace) and
// returns the index after it.
func scanValue(d []byte, i, depth int) (int, error) {
	if i >= len(d) {
		return 0, jsonErr(d, i, "value")
	}
	switch c := d[i]; {
	case c == '"':
		end, _, err := scanString(d, i)
		return end, err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return 0, fmt.Errorf("%w: JSON nested deeper than %d", ErrInvalidMessage, maxDepth)
		}
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		i = skipWS(d, i+1)
		if i < len(d) && d[i] == close {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if i, _, err = scanString(d, i); err != nil {
					return 0, err
				}
				i = skipWS(d, i)
				if i >= len(d) || d[i] != ':' {
					return 0, jsonErr(d, i, "':'")
				}
				i = skipWS(d, i+1)
			}
			if i, err = scanValue(d, i, depth+1); err != nil {
				return 0, err
			}
			i = skipWS(d, i)
			if i < len(d) && d[i] == ',' {
				i = skipWS(d, i+1)
				continue
			}
			if i < len(d) && d[i] == close {
				return i + 1, nil
			}
			return 0, jsonErr(d, i, "',' or '"+string(close)+"'")
		}
	case c == 't':
		return scanLiteral(d, i, "true")
	case c == 'f':
		return scanLiteral(d, i, "false")
	case c == 'n':
		return scanLiteral(d, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		end, _, err := scanNumber(d, i)
		return end, err
	}
	return 0, jsonErr(d, i, "value")
}

// parseInt parses the JSON integer at d[i] into an int64.
func parseInt(d []byte, i int) (int64, int, error) {
	end, integer, err := scanNumber(d, i)
	if err != nil {
		return 0, 0, err
	}
	if !integer {
		return 0, 0, fmt.Errorf("%w: expected an integer at offset %d", ErrInvalidMessage, i)
	}
	n, err := strconv.ParseInt(string(d[i:end]), 10, 64) // no allocation: the conversion does not escape
	if err != nil {
		return 0, 0, fmt.Errorf("%w: integer at offset %d out of range", ErrInvalidMessage, i)
	}
	return n, end, nil
}

// forEachProperty walks the JSON object at d[i] (after whitespace) and calls fn with
// each raw key (without quotes, maybe escaped) and the offset of its value; fn returns
// the offset after the value. It returns the index after the object.
func forEachProperty(d []byte, i int, fn func(key []byte, escaped bool, vi int) (int, error)) (int, error) {
	i = skipWS(d, i)
	if i >= len(d) || d[i] != '{' {
		return 0, jsonErr(d, i, "'{'")
	}
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == '}' {
		return i + 1, nil
	}
	for {
		kend, escaped, err := scanString(d, i)
		if err != nil {
			return 0, err
		}
		key := d[i+1 : kend-1]
		i = skipWS(d, kend)
		if i >= len(d) || d[i] != ':' {
			return 0, jsonErr(d, i, "':'")
		}
		i = skipWS(d, i+1)
		if i >= len(d) {
			return 0, jsonErr(d, i, "value")
		}
		if i, err = fn(key, escaped, i); err != nil {
			return 0, err
		}
		i = skipWS(d, i)
		if i < len(d) && d[i] == ',' {
			i = skipWS(d, i+1)
			continue
		}
		if i < len(d) && d[i] == '}' {
			return i + 1, nil
		}
		return 0, jsonErr(d, i, "',' or '}'")
	}
}

// keyIs compares a raw property name with a known ASCII name; escaped names are
// decoded first so that "\u0074ype" still means "type".
func keyIs(key []byte, escaped bool, name string) bool {
	if !escaped {
		return string(key) == name
	}
	var buf [32]byte
	return string(appendUnescaped(buf[:0], key)) == name
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD; control
// characters (including the 0x1E record separator) are escaped.
func appendQuoted[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
