package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
//   - it has at most MaxTokenLength characters (checked before any parsing);
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

	cache verifiedCache
}

// ValidateClient validates a client token for hub. The aud must have the path
// /client (or /client/) and a hub query value equal to hub, ignoring case; other query
// keys, the port and a trailing '/' are ignored.
func (v *Validator) ValidateClient(token, hub string) (*Principal, error) {
	p, err := v.validate(token, func(u *url.URL) bool { return clientAudienceMatches(u, hub) })
	if err != nil {
		return nil, fmt.Errorf("auth: client token: %w", err)
	}
	return p, nil
}

// ValidateREST validates a REST API token for the request path; pass the escaped path
// (r.URL.EscapedPath()). The path of the aud must equal it exactly, apart from one
// trailing '/', the aud's query, and the spellings RFC 3986 calls equivalent
// (percent-escapes of unreserved characters, hex digit case, a character escaped on one
// side only when it is not a delimiter). A '/' and "%2F" differ, and so do "bob" and
// "BOB": a token signed for one resource never reaches another.
func (v *Validator) ValidateREST(token, path string) (*Principal, error) {
	want := normalizePath(path)
	p, err := v.validate(token, func(u *url.URL) bool {
		return normalizePath(u.EscapedPath()) == want
	})
	if err != nil {
		return nil, fmt.Errorf("auth: REST token: %w", err)
	}
	return p, nil
}

// normalizePath is the RFC 3986 section 6.2.2 normal form of an escaped path without
// one trailing '/': unreserved characters unescaped, other escapes with upper-case hex,
// and bytes that may not stand unescaped in a path (space, non-ASCII, a '%' that starts
// no escape) escaped. Delimiters ('/', ':', '@', ...) stay as written, so "a%2Fb" and
// "a/b" stay different.
func normalizePath(p string) string {
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

func clientAudienceMatches(u *url.URL, hub string) bool {
	if hub == "" {
		return false
	}
	if p := strings.ToLower(u.Path); p != "/client" && p != "/client/" {
		return false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return false
	}
	hubs := q["hub"]
	return len(hubs) == 1 && strings.EqualFold(hubs[0], hub)
}

func (v *Validator) validate(token string, audOK func(*url.URL) bool) (*Principal, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > MaxTokenLength {
		return nil, fmt.Errorf("%d characters: %w", len(token), ErrTokenTooLong)
	}
	if v == nil {
		return nil, fmt.Errorf("%w: no access key configured", ErrBadSignature)
	}
	if e := v.cache.get(token, v.Keys); e != nil {
		return v.accept(e, audOK)
	}
	// Cheap structural checks first: golang-jwt reports a disallowed alg as a
	// signature error, and we want ErrAlgorithm for it and no work spent on the
	// payload of a token we will refuse anyway.
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: a JWT has three dot-separated parts", ErrMalformed)
	}
	if err := checkHeader(token[:strings.IndexByte(token, '.')]); err != nil {
		return nil, err
	}

	keys := make([]jwt.VerificationKey, 0, len(v.Keys))
	for _, k := range v.Keys {
		if k != "" {
			keys = append(keys, []byte(k))
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no access key configured", ErrBadSignature)
	}

	claims := &parsedClaims{}
	_, err := jwt.ParseWithClaims(token, claims,
		func(*jwt.Token) (any, error) { return jwt.VerificationKeySet{Keys: keys}, nil },
		jwt.WithValidMethods(validMethods),
		jwt.WithStrictDecoding(),
		// exp, nbf and aud are checked below with Signalbox's rules (skew, ignored
		// nbf, normalised audience); golang-jwt checks only the signature here.
		jwt.WithoutClaimsValidation(),
	)
	if err != nil {
		// golang-jwt's inner errors are not echoed: some quote parts of the input.
		switch {
		case errors.Is(err, jwt.ErrTokenSignatureInvalid):
			return nil, fmt.Errorf("%w: signature does not match any configured access key", ErrBadSignature)
		case errors.Is(err, jwt.ErrTokenUnverifiable):
			return nil, fmt.Errorf("%w: token cannot be verified", ErrAlgorithm)
		case claims.err != nil:
			return nil, claims.err
		default:
			return nil, fmt.Errorf("%w: token could not be decoded", ErrMalformed)
		}
	}

	exp, err := claims.expiry()
	if err != nil {
		return nil, err
	}
	auds, err := claims.audiences()
	if err != nil {
		return nil, err
	}
	e := &verifiedToken{exp: exp, auds: auds, userID: claims.userID(), claims: claims.list()}
	p, err := v.accept(e, audOK)
	if err == nil {
		v.cache.put(token, e, v.Keys, v.now())
	}
	return p, err
}

func (v *Validator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// accept applies the checks that depend on the time and the request (expiry and
// audience) to a token whose signature verified.
func (v *Validator) accept(e *verifiedToken, audOK func(*url.URL) bool) (*Principal, error) {
	exp := e.exp
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.ClockSkew
	if skew == 0 {
		skew = DefaultClockSkew
	} else if skew < 0 {
		skew = 0
	}
	if !now().Before(exp.Add(skew)) {
		return nil, ErrExpired
	}

	if !v.anyAudience(e.auds, audOK) {
		return nil, ErrAudience
	}
	return &Principal{UserID: e.userID, Claims: append([]Claim(nil), e.claims...), Expires: exp}, nil
}

func (v *Validator) anyAudience(auds []string, audOK func(*url.URL) bool) bool {
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
		if len(v.Hosts) > 0 && !v.hostAllowed(u.Host) {
			continue
		}
		if audOK(u) {
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

// checkHeader decodes the JOSE header and checks what golang-jwt does not: no
// duplicate members (a parser differential waiting to happen), no crit extensions we
// cannot honour, and an alg from the allow-list.
func checkHeader(seg string) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	names, values, err := decodeObject(raw)
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	alg := ""
	for i, n := range names {
		switch n {
		case "crit":
			return fmt.Errorf("%w: header has unsupported crit extensions", ErrMalformed)
		case "alg":
			var ok bool
			if alg, ok = jsonString(values[i]); !ok {
				return fmt.Errorf("%w: alg is not a string", ErrMalformed)
			}
		}
	}
	for _, m := range validMethods {
		if alg == m {
			return nil
		}
	}
	return fmt.Errorf("%w: only HS256 and HS512 are accepted", ErrAlgorithm)
}
