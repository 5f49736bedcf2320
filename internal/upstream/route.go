package upstream

import (
	"net/http"
	"net/url"
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
	// header is what the calls send, signed with the keys in signedWith; shared by the
	// calls of the route, so never modified once stored (a new one replaces it).
	header atomic.Pointer[signedHeader]
}

type signedHeader struct {
	keys *[]string
	h    http.Header
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
	rt.header.Store(sh)
	return sh
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
