package server

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// originPattern is one parsed allowed-origins entry. host is lower case; a wildcard
// entry (https://*.example.com) keeps the suffix ".example.com" in host.
type originPattern struct {
	scheme, host, port string
	wildcard           bool
}

// originPolicy decides which browser origins may call the service. The zero value
// (no entries) allows every origin, as Azure SignalR and its emulator do.
type originPolicy struct {
	any      bool
	patterns []originPattern
}

// newOriginPolicy parses the allowed-origins entries; Config.Validate reports the
// same errors with the setting's name.
func newOriginPolicy(entries []string) (originPolicy, error) {
	p := originPolicy{any: len(entries) == 0}
	for _, e := range entries {
		if e == "*" {
			p.any = true
			continue
		}
		op, err := parseOriginPattern(e)
		if err != nil {
			return originPolicy{}, err
		}
		p.patterns = append(p.patterns, op)
	}
	return p, nil
}

// parseOriginPattern accepts scheme://host[:port] (http or https) with an optional
// leading "*." label standing for one or more subdomain labels.
func parseOriginPattern(s string) (originPattern, error) {
	bad := func(why string) (originPattern, error) {
		return originPattern{}, fmt.Errorf("%q %s; want \"*\", scheme://host[:port] or https://*.example.com", s, why)
	}
	wildcard := false
	raw := s
	if scheme, rest, ok := strings.Cut(s, "://"); ok && strings.HasPrefix(rest, "*.") {
		wildcard = true
		raw = scheme + "://" + rest[2:]
	}
	if strings.Contains(raw, "*") {
		return bad("has a '*' that is not a leading \"*.\" label")
	}
	op, ok := parseOrigin(raw)
	if !ok {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			return bad("is not a URL")
		case !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https"):
			return bad("must start with http:// or https://")
		case u.Host == "" || u.Hostname() == "":
			return bad("has no host")
		case u.User != nil, u.Path != "", u.RawQuery != "", u.ForceQuery, u.Fragment != "":
			return bad("must have no user, path, query or fragment")
		}
		return bad("has an invalid port")
	}
	if wildcard {
		if net.ParseIP(op.host) != nil {
			return bad("puts a wildcard before an IP address")
		}
		op.host = "." + op.host
		op.wildcard = true
	}
	return op, nil
}

// parseOrigin normalises a serialized origin: scheme and host lower case, the
// default port dropped. Anything else (a path, "null", another scheme) is not an
// origin this service can allow.
func parseOrigin(s string) (originPattern, bool) {
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return originPattern{}, false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return originPattern{}, false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" || (port == "" && strings.HasSuffix(u.Host, ":")) {
		return originPattern{}, false
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return originPattern{}, false
		}
		port = strconv.Itoa(n)
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			port = ""
		}
	}
	return originPattern{scheme: scheme, host: host, port: port}, true
}

// allows reports whether a request's Origin header value may use the service. An
// empty value (no Origin header: not a browser) is always allowed.
func (p originPolicy) allows(origin string) bool {
	if p.any || origin == "" {
		return true
	}
	o, ok := parseOrigin(origin)
	if !ok {
		return false
	}
	for _, op := range p.patterns {
		if op.scheme != o.scheme || op.port != o.port {
			continue
		}
		if op.wildcard {
			if len(o.host) > len(op.host) && strings.HasSuffix(o.host, op.host) {
				return true
			}
		} else if op.host == o.host {
			return true
		}
	}
	return false
}
