package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DefaultClockSkew is the tolerance on exp when Validator.ClockSkew is zero. It is the
// .NET IdentityModel default, so tokens Azure accepts are accepted here too.
const DefaultClockSkew = 5 * time.Minute

// validMethods is the algorithm allow-list: the two the Azure SDK can emit. Anything
// else (none, HS384, RS*/ES*/PS*, EdDSA) is rejected, which rules out key confusion.
var validMethods = []string{"HS256", "HS512"}

// Validator checks access tokens. It is safe for concurrent use as long as its fields
// are not changed while it is in use; to rotate keys, replace the Validator.
//
// A token is accepted when:
//   - it has at most MaxLength characters (checked before any parsing);
//   - its alg is HS256 or HS512 and its signature verifies with ANY of Keys (primary,
//     secondary, ...); the kid header is ignored, because the SDK fills it with a
//     per-process hash of the key that identifies nothing;
//   - it has a numeric exp that is not more than ClockSkew in the past;
//   - its aud (a string, or an array of which one element must match) names the hub
//     (ValidateClient) or the request path (ValidateREST).
//
// nbf and iat are not checked, as in Azure SignalR Service: the SDK sets them to the
// issuing time and the service documents that it ignores them, so a client whose
// clock runs behind the issuer's is not refused.
//
// The host of the audience is not compared with the request's Host unless Hosts is
// set: behind proxies, and when a ClientEndpoint differs from the Endpoint the tokens
// are minted for, the host a request arrives on says nothing about the token. The
// signature already binds the token to the key holder, and the path and hub binding
// stop a token for one hub or REST path from being used for another.
type Validator struct {
	// Keys are the access keys; a token signed with any of them is accepted. Empty
	// strings are skipped: an empty HMAC key would make every token forgeable.
	Keys []string
	// ClockSkew is the tolerance on exp. Zero means DefaultClockSkew (5 minutes);
	// a negative value means no tolerance at all.
	ClockSkew time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
	// Hosts, when not empty, is the allow-list of audience host names (compared
	// case-insensitively, port ignored). Empty means the host is not checked.
	Hosts []string
	// MaxLength is the longest token accepted, in characters; 0 means MaxTokenLength.
	MaxLength int

	clientCache, restCache verifiedCache
}

// ValidateClient validates a client token for hub. The aud must have the path
// /client (or /client/) and a hub query value equal to hub, ignoring case; other query
// keys, the port and a trailing '/' are ignored.
func (v *Validator) ValidateClient(token, hub string) (*Principal, error) {
	e, err := v.validate(token, audMatch{hub: hub}, false)
	if err != nil {
		return nil, fmt.Errorf("auth: client token: %w", err)
	}
	return e.principal(), nil
}

// ValidateREST validates a REST API token for the request path; pass the escaped path
// (r.URL.EscapedPath()). The path of the aud must equal it exactly, apart from one
// trailing '/', the aud's query, and the spellings RFC 3986 calls equivalent
// (percent-escapes of unreserved characters, hex digit case, a character escaped on one
// side only when it is not a delimiter). A '/' and "%2F" differ, and so do "bob" and
// "BOB": a token signed for one resource never reaches another.
func (v *Validator) ValidateREST(token, path string) (*Principal, error) {
	e, err := v.validate(token, audMatch{rest: true, path: normalizePath(path)}, true)
	if err != nil {
		return nil, fmt.Errorf("auth: REST token: %w", err)
	}
	return e.principal(), nil
}

// CheckREST is ValidateREST for a caller that needs no Principal: the same checks
// and errors, without copying the token's claims (a reused token's check then
// allocates nothing).
func (v *Validator) CheckREST(token, path string) error {
	if _, err := v.validate(token, audMatch{rest: true, path: normalizePath(path)}, true); err != nil {
		return fmt.Errorf("auth: REST token: %w", err)
	}
	return nil
}

// normalizePath is the RFC 3986 section 6.2.2 normal form of an escaped path without
// one trailing '/': unreserved characters unescaped, other escapes with upper-case hex,
// and bytes that may not stand unescaped in a path (space, non-ASCII, a '%' that starts
// no escape) escaped. Delimiters ('/', ':', '@', ...) stay as written, so "a%2Fb" and
// "a/b" stay different.
func normalizePath(p string) string {
	if isNormalPath(p) {
		return p // the usual case, without a copy
	}
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(d) {
				b = append(b, d)
			} else {
				b = append(b, '%', hexDigits[d>>4], hexDigits[d&15])
			}
			i += 2
			continue
		}
		if isUnreserved(c) || strings.IndexByte("/:@!$&'()*+,;=", c) >= 0 {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return strings.TrimSuffix(string(b), "/")
}

// isNormalPath reports whether normalizePath(p) is p: no escapes, only unreserved
// characters and delimiters, no trailing '/'.
func isNormalPath(p string) bool {
	if strings.HasSuffix(p, "/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; !isUnreserved(c) && strings.IndexByte("/:@!$&'()*+,;=", c) < 0 {
			return false
		}
	}
	return true
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// audience is one aud of a verified token, parsed once when the token is verified
// (a cached token is presented again and again).
type audience struct {
	host string // for Validator.Hosts
	// clientHub is the hub a client audience names: its path is /client or /client/
	// (any case) and its query has exactly one hub value. "" otherwise.
	clientHub string
	path      string // normalizePath of the escaped path, for REST
}

// parseAudiences keeps the audiences that are absolute http(s) or ws(s) URLs with a
// host; the others can never match.
func parseAudiences(auds []string) []audience {
	out := make([]audience, 0, len(auds))
	for _, a := range auds {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" {
			continue
		}
		switch strings.ToLower(u.Scheme) {
		case "http", "https", "ws", "wss":
		default:
			continue
		}
		out = append(out, audience{host: u.Host, clientHub: clientHubOf(u), path: normalizePath(u.EscapedPath())})
	}
	return out
}

// clientHubOf returns the hub of a client audience URL, "" when u is not one.
func clientHubOf(u *url.URL) string {
	if p := strings.ToLower(u.Path); p != "/client" && p != "/client/" {
		return ""
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return ""
	}
	if hubs := q["hub"]; len(hubs) == 1 {
		return hubs[0]
	}
	return ""
}

// maxLength is MaxLength or its default; a nil Validator has the default.
func (v *Validator) maxLength() int {
	if v != nil && v.MaxLength > 0 {
		return v.MaxLength
	}
	return MaxTokenLength
}

// audMatch is the audience a token must name: a client audience naming hub,
// ignoring case, or (rest) one whose path is the escaped request path, both
// normalised (path is). A value, not a closure: a closure escaped to the heap on
// every check.
type audMatch struct {
	rest bool
	hub  string
	path string
}

func (m audMatch) ok(a *audience) bool {
	if m.rest {
		return a.path == m.path
	}
	return m.hub != "" && a.clientHub != "" && strings.EqualFold(a.clientHub, m.hub)
}

// validate returns the verified token once every check passed.
func (v *Validator) validate(token string, audOK audMatch, rest bool) (*verifiedToken, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if limit := v.maxLength(); len(token) > limit {
		return nil, fmt.Errorf("%d characters, more than %d: %w", len(token), limit, ErrTokenTooLong)
	}
	if v == nil {
		return nil, fmt.Errorf("%w: no access key configured", ErrBadSignature)
	}
	cache, limit := &v.clientCache, maxCachedClientTokens
	if rest {
		cache, limit = &v.restCache, maxCachedRESTTokens
	}
	if e := cache.get(token, v.Keys); e != nil {
		if err := v.accept(e, audOK); err != nil {
			return nil, err
		}
		return e, nil
	}
	// Structural checks first, so that no work is spent on the payload of a token that
	// will be refused anyway.
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: a JWT has three dot-separated parts", ErrMalformed)
	}
	headerEnd, payloadEnd := strings.IndexByte(token, '.'), strings.LastIndexByte(token, '.')
	alg, err := checkHeader(token[:headerEnd])
	if err != nil {
		return nil, err
	}

	keys := make([][]byte, 0, len(v.Keys))
	for _, k := range v.Keys {
		if k != "" {
			keys = append(keys, []byte(k))
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no access key configured", ErrBadSignature)
	}

	// The order of the checks and their errors is golang-jwt's (ParseWithClaims with
	// strict base64, checked against it by FuzzValidateMatchesReference): the payload,
	// then the signature's encoding, then the signature. It is done here because
	// golang-jwt decoded the header a second time into a map and the payload through
	// encoding/json's reflection: 90 allocations and most of the 20 µs a token cost.
	claims, err := decodeClaims(token[headerEnd+1 : payloadEnd])
	if err != nil {
		return nil, err
	}
	sig, err := segmentEncoding.DecodeString(token[payloadEnd+1:])
	if err != nil {
		return nil, fmt.Errorf("%w: token could not be decoded", ErrMalformed)
	}
	if !signedByAny(alg, keys, token[:payloadEnd], sig) {
		return nil, fmt.Errorf("%w: signature does not match any configured access key", ErrBadSignature)
	}

	exp, err := claims.expiry()
	if err != nil {
		return nil, err
	}
	auds, err := claims.audiences()
	if err != nil {
		return nil, err
	}
	e := newVerifiedToken(exp, auds, claims.userID(), claims.list())
	if err := v.accept(e, audOK); err != nil {
		return nil, err
	}
	cache.put(token, e, v.Keys, v.now(), limit)
	return e, nil
}

func (v *Validator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// accept applies the checks that depend on the time and the request (expiry and
// audience) to a token whose signature verified.
func (v *Validator) accept(e *verifiedToken, audOK audMatch) error {
	if v.expired(e.exp) {
		return ErrExpired
	}
	if !v.anyAudience(e.auds, audOK) {
		return ErrAudience
	}
	return nil
}

// principal is who a verified token names (a copy: the cached token is shared).
func (e *verifiedToken) principal() *Principal {
	return &Principal{UserID: e.userID, Claims: append([]Claim(nil), e.claims...), Expires: e.exp}
}

// expired reports whether exp has passed by more than the clock skew.
func (v *Validator) expired(exp time.Time) bool {
	skew := v.ClockSkew
	if skew == 0 {
		skew = DefaultClockSkew
	} else if skew < 0 {
		skew = 0
	}
	return !v.now().Before(exp.Add(skew))
}

func (v *Validator) anyAudience(auds []audience, audOK audMatch) bool {
	for i := range auds {
		if len(v.Hosts) > 0 && !v.hostAllowed(auds[i].host) {
			continue
		}
		if audOK.ok(&auds[i]) {
			return true
		}
	}
	return false
}

func (v *Validator) hostAllowed(host string) bool {
	for _, h := range v.Hosts {
		if hostsEqual(h, host) {
			return true
		}
	}
	return false
}

// segmentEncoding decodes the parts of a JWT: base64url without padding, and strict
// (the unused bits of the last character must be zero), so that one token has one
// spelling.
var segmentEncoding = base64.RawURLEncoding.Strict()

// checkHeader decodes the JOSE header and returns its alg once it is one of
// validMethods. It refuses duplicate members (a parser differential waiting to
// happen) and crit extensions we cannot honour.
func checkHeader(seg string) (alg string, err error) {
	raw, err := segmentEncoding.DecodeString(seg)
	if err != nil {
		return "", fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	names, values, err := decodeObject(raw)
	if err != nil {
		return "", fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	for i, n := range names {
		switch n {
		case "crit":
			return "", fmt.Errorf("%w: header has unsupported crit extensions", ErrMalformed)
		case "alg":
			var ok bool
			if alg, ok = jsonString(values[i]); !ok {
				return "", fmt.Errorf("%w: alg is not a string", ErrMalformed)
			}
		}
	}
	for _, m := range validMethods {
		if alg == m {
			return alg, nil
		}
	}
	return "", fmt.Errorf("%w: only HS256 and HS512 are accepted", ErrAlgorithm)
}

// decodeClaims decodes the payload segment. Invalid base64 or JSON is "could not be
// decoded"; valid JSON that is not an object without duplicate names is refused with
// the reason. A null payload gives no claims (golang-jwt's decoding leaves the claims
// untouched then), so the token is refused later for its missing exp.
func decodeClaims(seg string) (*parsedClaims, error) {
	raw, err := segmentEncoding.DecodeString(seg)
	if err != nil || !json.Valid(raw) {
		return nil, fmt.Errorf("%w: token could not be decoded", ErrMalformed)
	}
	c := &parsedClaims{}
	if string(bytes.TrimSpace(raw)) == "null" {
		return c, nil
	}
	if c.names, c.values, err = decodeValidObject(raw); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	return c, nil
}

// signedByAny reports whether sig is the HMAC of signed under alg (HS256 or HS512)
// with any of keys.
func signedByAny(alg string, keys [][]byte, signed string, sig []byte) bool {
	h, size := sha256.New, sha256.Size
	if alg == "HS512" {
		h, size = sha512.New, sha512.Size
	}
	if len(sig) != size {
		return false
	}
	msg := []byte(signed)
	for _, k := range keys {
		m := hmac.New(h, k)
		m.Write(msg)
		if hmac.Equal(sig, m.Sum(nil)) {
			return true
		}
	}
	return false
}
