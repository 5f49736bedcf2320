package restapi

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// validHubName checks the REST hub/application pattern
// ^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$ without a regexp on the hot path.
func validHubName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i == 0:
			return false
		case c >= '0' && c <= '9', c == '_', c == '`', c == ',', c == '.', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// maxGroupNameLen is counted in characters, as the swagger's maxLength is.
const maxGroupNameLen = 1024

func checkGroup(g string) error {
	if g == "" || strings.TrimFunc(g, unicode.IsSpace) == "" {
		return invalid("group name must not be empty or whitespace")
	}
	if !utf8.ValidString(g) {
		return invalid("group name must be valid UTF-8")
	}
	if utf8.RuneCountInString(g) > maxGroupNameLen {
		return invalid("group name is longer than %d characters", maxGroupNameLen)
	}
	return nil
}

func checkID(what, v string) error {
	if v == "" {
		return invalid("%s must not be empty", what)
	}
	return nil
}

// effectiveHub applies the optional application (apps: the query's application
// values): lower(app)_lower(hub).
func effectiveHub(hubName string, apps []string) (string, error) {
	if !validHubName(hubName) {
		return "", invalid("invalid hub name %q: must match ^[A-Za-z][A-Za-z0-9_`,.[\\]]{0,127}$", truncate(hubName))
	}
	if len(apps) > 1 {
		return "", invalid("application must be given at most once")
	}
	if len(apps) == 0 || apps[0] == "" {
		return strings.ToLower(hubName), nil
	}
	if !validHubName(apps[0]) {
		return "", invalid("invalid application name %q", truncate(apps[0]))
	}
	return strings.ToLower(apps[0]) + "_" + strings.ToLower(hubName), nil
}

// truncate keeps echoed input short in error messages.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// excludedIDs returns the repeated excluded query values, dropping empty ones.
func excludedIDs(q url.Values) []string {
	ex := q["excluded"]
	out := ex[:0:0]
	for _, id := range ex {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// ttlParam parses ttl (seconds, int32, >= 0); absent means nil (persistent).
func ttlParam(q url.Values) (*time.Duration, error) {
	v, ok := q["ttl"]
	if !ok || len(v) == 0 {
		return nil, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 32)
	if err != nil || n < 0 {
		return nil, invalid("ttl must be a non-negative integer number of seconds")
	}
	d := time.Duration(n) * time.Second
	return &d, nil
}

// intParam parses an optional integer query value within [lo, hi].
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, invalid("%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}
