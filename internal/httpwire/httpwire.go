// Package httpwire holds the byte-level checks of HTTP/1.1's syntax (RFC 9110 tokens,
// field text, case-insensitive names) that the service's own small readers of
// requests and responses share: the upstream client's reader of common answers and
// the benchmark's function app and REST callers. Each reader accepts only what
// net/http reads the same way and leaves everything else to net/http.
package httpwire

// Token reports whether b is an RFC 9110 token: a method or a field name.
func Token(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tokenByte[c] {
			return false
		}
	}
	return true
}

var tokenByte = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// Text reports whether b holds only visible ASCII, spaces and tabs: no control bytes,
// no stray CR or LF, and nothing beyond ASCII, where readers differ.
func Text(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}

// Digits reports whether b is one or more ASCII digits.
func Digits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// EqualFold compares the ASCII bytes b with lower, a lower-case name, ignoring b's case.
func EqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
