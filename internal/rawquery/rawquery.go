// Package rawquery reads the values of one key out of a raw URL query the way
// url.ParseQuery reads them (a part holding ';' or a bad escape is skipped) without
// building url.Values: a WebSocket connect's query holds the whole access token, and
// building a map of it for every look at one key showed in the connect profile.
package rawquery

import (
	"net/url"
	"strings"
)

// maxParams is net/url's default limit on query parameters: a longer query parses as
// empty.
const maxParams = 10000

// Each calls fn with every value of the key name in raw, in order. With fold the key
// matches case-insensitively (ASP.NET Core's query keys), else exactly.
func Each(raw, name string, fold bool, fn func(v string)) {
	if strings.Count(raw, "&") >= maxParams {
		// Rare enough to leave to net/url, whose limit (a GODEBUG setting) then applies.
		q, _ := url.ParseQuery(raw)
		if !fold {
			for _, v := range q[name] {
				fn(v)
			}
			return
		}
		for k, vs := range q {
			if strings.EqualFold(k, name) {
				for _, v := range vs {
					fn(v)
				}
			}
		}
		return
	}
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" || strings.Contains(part, ";") {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		// Unescaping never lengthens a key, and nothing shorter than an ASCII name
		// folds to it: a shorter key cannot match.
		if len(k) < len(name) {
			continue
		}
		uk, err := url.QueryUnescape(k)
		if err != nil || uk != name && (!fold || !strings.EqualFold(uk, name)) {
			continue
		}
		uv, err := url.QueryUnescape(v)
		if err != nil {
			continue
		}
		fn(uv)
	}
}
