// Package redact hides the parts of user-supplied text that may hold secrets, so that
// error messages and logs can still say which setting they are about.
package redact

import "strings"

// URL returns raw without what may hold a secret: the user info (a Redis password)
// becomes "***@" and the query or fragment (a function key ?code=) becomes "?***". It
// works on text, not on a parsed URL, so it also serves URLs that do not parse and
// templates with {placeholders}.
func URL(raw string) string {
	s, cut := raw, false
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s, cut = s[:i], true
	}
	if i := strings.Index(s, "://"); i >= 0 {
		host := s[i+3:] // the authority: up to the path
		if j := strings.IndexByte(host, '/'); j >= 0 {
			host = host[:j]
		}
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			s = s[:i+3] + "***@" + s[i+3+at+1:]
		}
	}
	if cut {
		s += "?***"
	}
	return s
}
