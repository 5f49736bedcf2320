package upstream

import (
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/signalbox-io/signalbox/auth"
)

// route is where the calls of one event of a session go and what each of them sends
// besides its body. Building it (matching the rules, expanding and parsing the URL,
// the headers, the HMAC signature per key) cost more than the rest of a call's own
// work, and it is the same for every call of the event: a session keeps the route of
// the last event it invoked.
type route struct {
	category, event string
	url             string // the target, as the rule expanded it (logs redact it)
	part            string // the isolation unit (see partKey)
	// target is url parsed once (nil when it does not parse; the call then fails as a
	// request that cannot be built). Requests share it and never modify it.
	target *url.URL
	// fast: calls go through the Upstream's fast client, to addr (host:port).
	fast bool
	addr string
	// header is what the calls send, signed with the keys in signedWith; shared by the
	// calls of the route, so never modified once stored (a new one replaces it).
	header atomic.Pointer[signedHeader]
}

type signedHeader struct {
	keys *[]string
	h    http.Header
	// head is the request line and headers as the fast client writes them, up to the
	// value of Content-Length (a route's calls differ only in their bodies).
	head []byte
}

// signature caches X-ASRS-Signature of the session's connection id for one set of keys.
type signature struct {
	keys  *[]string
	value string
}

// route returns the route of event in category, or nil when no rule matches. The
// route of the last invoked event is reused.
func (s *Session) route(category, event string) *route {
	cacheable := category == CategoryMessages
	if cacheable {
		if rt := s.lastRoute.Load(); rt != nil && rt.event == event {
			return rt
		}
	}
	target, part := resolve(s.u.rules, s.hub, category, event)
	if target == "" {
		return nil
	}
	rt := &route{category: category, event: event, url: target, part: part}
	if parsed, err := url.Parse(target); err == nil {
		rt.target = parsed
		if s.u.fast != nil && fastTarget(parsed) {
			rt.fast, rt.addr = true, dialAddr(parsed)
		}
	}
	if cacheable {
		s.lastRoute.Store(rt)
	}
	return rt
}

// headerFor returns the headers of a call of rt, signed with the keys configured now,
// so a rotated key takes effect for connections that were open before the rotation too.
func (s *Session) headerFor(rt *route) *signedHeader {
	keys := s.u.keys.Load()
	if sh := rt.header.Load(); sh != nil && sh.keys == keys {
		return sh
	}
	h := make(http.Header, len(s.headers)+4)
	// Raw keys keep the X-ASRS-* spelling of the emulator on the wire; receivers compare
	// header names case-insensitively anyway.
	for k, v := range s.headers {
		h[k] = []string{v}
	}
	if sig := s.signature(keys); sig != "" {
		h["X-ASRS-Signature"] = []string{sig}
	}
	h["X-ASRS-Category"] = []string{rt.category}
	h["X-ASRS-Event"] = []string{headerValue(rt.event)}
	if rt.category == CategoryMessages {
		h["Content-Type"] = []string{s.contentType}
	} else {
		h["Content-Type"] = []string{"application/json"}
	}
	sh := &signedHeader{keys: keys, h: h}
	if rt.fast {
		sh.head = renderHead(rt.target, h)
	}
	rt.header.Store(sh)
	return sh
}

// renderHead writes the request line and the headers of a POST to target, in a fixed
// order, up to the value of Content-Length. The header values passed headerValue, so
// they hold no line breaks. User-Agent is net/http's, so the function app sees the same
// client whichever path a call took.
func renderHead(target *url.URL, h http.Header) []byte {
	b := make([]byte, 0, 512)
	b = append(b, "POST "...)
	b = append(b, target.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, strings.TrimSuffix(target.Host, ":")...)
	b = append(b, "\r\nUser-Agent: Go-http-client/1.1\r\n"...)
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, textproto.TrimString(v)...) // as net/http writes values
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "Content-Length: "...)
}

// signature returns X-ASRS-Signature for keys, computed once per session and key set
// (one HMAC per key) rather than once per call.
func (s *Session) signature(keys *[]string) string {
	if sig := s.sig.Load(); sig != nil && sig.keys == keys {
		return sig.value
	}
	v := auth.UpstreamSignature(*keys, s.id)
	s.sig.Store(&signature{keys: keys, value: v})
	return v
}
