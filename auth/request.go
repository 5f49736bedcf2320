package auth

import (
	"net/http"
	"strings"

	"github.com/signalbox-io/signalbox/internal/rawquery"
)

// TokenFromRequest returns the access token of r: the credentials of an
// "Authorization: Bearer <token>" header (scheme matched case-insensitively), else the
// last access_token query value (browsers cannot set headers on WebSocket and
// EventSource requests), else "". When both are present and differ, the header wins.
// Callers must never log the result, nor the query it may come from.
func TokenFromRequest(r *http.Request) string {
	if r == nil {
		return ""
	}
	for _, h := range r.Header.Values("Authorization") {
		if t, ok := bearer(h); ok {
			return t
		}
	}
	if r.URL == nil || r.URL.RawQuery == "" {
		return ""
	}
	return queryToken(r.URL.RawQuery)
}

// queryToken returns the last non-empty access_token value of a raw query, as ASP.NET
// Core takes it.
func queryToken(raw string) string {
	last := ""
	rawquery.Each(raw, "access_token", false, func(v string) {
		if t := strings.TrimSpace(v); t != "" {
			last = t
		}
	})
	return last
}

func bearer(h string) (string, bool) {
	h = strings.TrimSpace(h)
	const scheme = "bearer"
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	if c := h[len(scheme)]; c != ' ' && c != '\t' {
		return "", false
	}
	t := strings.TrimSpace(h[len(scheme):])
	return t, t != ""
}

// jwtSystemClaims are JWT claims that describe the token rather than the user; they
// are not forwarded as user claims. It is the set the SDK renames when a user claim
// collides with one of them, plus typ.
var jwtSystemClaims = map[string]bool{
	"aud": true, "exp": true, "iat": true, "nbf": true, "iss": true, "jti": true,
	"typ": true, "actort": true, "acr": true, "azp": true, "c_hash": true, "nonce": true,
}

// UserClaims returns the claims that belong to the user, in order: claims starting
// asrs.s. and JWT system claims (aud, exp, iat, nbf, iss, jti, typ, actort, acr, azp,
// c_hash, nonce) are dropped, and the asrs.u. prefix that NewToken puts on colliding
// user claims is removed again (so a user's own "aud" claim comes back as "aud").
// This is what the upstream receives in X-ASRS-User-Claims.
func UserClaims(all []Claim) []Claim {
	out := make([]Claim, 0, len(all))
	for _, c := range all {
		switch {
		case strings.HasPrefix(c.Type, UserClaimPrefix):
			if t := c.Type[len(UserClaimPrefix):]; t != "" {
				out = append(out, Claim{Type: t, Value: c.Value})
			}
		case strings.HasPrefix(c.Type, SystemClaimPrefix), jwtSystemClaims[c.Type]:
		default:
			out = append(out, c)
		}
	}
	return out
}
