package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTokenLifetime is the lifetime of a token when TokenOptions.Lifetime is zero.
const DefaultTokenLifetime = time.Hour

// TokenOptions configures NewToken.
type TokenOptions struct {
	// Audience is the aud claim (required): ClientAudience for client tokens,
	// RESTAudience for REST calls.
	Audience string
	// Lifetime sets exp = now + Lifetime; zero means DefaultTokenLifetime (1 h).
	Lifetime time.Duration
	// UserID, when not empty, is written as asrs.s.uid. An asrs.s.uid among Claims is
	// then dropped so the token carries exactly one user id.
	UserID string
	// Claims are extra claims, in order. A type that repeats becomes a JSON array.
	// Types that collide with JWT system claims (aud, exp, iat, nbf, iss, actort,
	// acr, azp, c_hash, jti, nonce) are renamed asrs.u.<type>; only the first sub
	// stays sub, later ones become asrs.u.sub. Long .NET claim-type URIs are
	// shortened the way .NET's JWT handler does (nameidentifier -> nameid, ...).
	Claims []Claim
	// Algorithm is "HS256" (default) or "HS512".
	Algorithm string
	// KeyID, when not empty, is written as the kid header.
	KeyID string
	// Issuer, when not empty, is written as iss.
	Issuer string
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// renamedClaims are the user claim types that would collide with claims the JWT
// handler of the Azure SDK owns; the SDK prefixes them with asrs.u. and so do we.
var renamedClaims = map[string]bool{
	"aud": true, "exp": true, "iat": true, "nbf": true, "iss": true, "actort": true,
	"acr": true, "azp": true, "c_hash": true, "jti": true, "nonce": true,
}

// outboundClaimTypes is the part of .NET's JwtSecurityTokenHandler outbound map that
// identity providers commonly produce, so claims copied from a .NET principal end up
// with the names .NET would have written.
var outboundClaimTypes = map[string]string{
	ClaimNameIdentifierURI: "nameid",
	"http://schemas.microsoft.com/ws/2008/06/identity/claims/role":        "role",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name":          "unique_name",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress":  "email",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname":     "given_name",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname":       "family_name",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/gender":        "gender",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/dateofbirth":   "birthdate",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/webpage":       "website",
	"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups":      "groups",
	"http://schemas.microsoft.com/ws/2008/06/identity/claims/actor":       "actort",
	"http://schemas.microsoft.com/ws/2008/06/identity/claims/denyonlysid": "denyonlysid",
}

// signingMethod maps TokenOptions.Algorithm to a jwt method; only the two HMAC
// algorithms the Azure SDK can emit are allowed.
func signingMethod(alg string) (jwt.SigningMethod, error) {
	switch strings.ToUpper(alg) {
	case "", "HS256":
		return jwt.SigningMethodHS256, nil
	case "HS512":
		return jwt.SigningMethodHS512, nil
	}
	return nil, fmt.Errorf("auth: token algorithm must be HS256 or HS512: %w", ErrAlgorithm)
}

// NewToken returns a JWT signed with accessKey (its UTF-8 bytes, never base64-decoded).
// It returns ErrTokenTooLong, unwrapped, when the token would have more than
// MaxTokenLength characters.
func NewToken(accessKey string, opts TokenOptions) (string, error) {
	if accessKey == "" {
		return "", errors.New("auth: access key is empty")
	}
	if opts.Audience == "" {
		return "", errors.New("auth: token audience is empty")
	}
	if opts.Lifetime < 0 {
		return "", fmt.Errorf("auth: token lifetime %v is negative", opts.Lifetime)
	}
	method, err := signingMethod(opts.Algorithm)
	if err != nil {
		return "", err
	}
	lifetime := opts.Lifetime
	if lifetime == 0 {
		lifetime = DefaultTokenLifetime
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t := now()

	c := &orderedClaims{}
	c.add("aud", opts.Audience)
	c.addNumber("exp", t.Add(lifetime).Unix())
	c.addNumber("iat", t.Unix())
	c.addNumber("nbf", t.Unix())
	if opts.Issuer != "" {
		c.add("iss", opts.Issuer)
	}
	if opts.UserID != "" {
		c.add(ClaimUserID, opts.UserID)
	}
	sawSub := false
	for _, cl := range opts.Claims {
		typ := cl.Type
		if typ == "" {
			return "", errors.New("auth: a token claim has an empty type")
		}
		if short, ok := outboundClaimTypes[typ]; ok {
			typ = short
		}
		switch {
		case renamedClaims[typ]:
			typ = UserClaimPrefix + typ
		case typ == "sub":
			if sawSub {
				typ = UserClaimPrefix + typ
			}
			sawSub = true
		case typ == ClaimUserID && opts.UserID != "":
			continue
		}
		c.add(typ, cl.Value)
	}

	tok := jwt.NewWithClaims(method, c)
	if opts.KeyID != "" {
		tok.Header["kid"] = opts.KeyID
	}
	s, err := tok.SignedString([]byte(accessKey))
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	if len(s) > MaxTokenLength {
		return "", ErrTokenTooLong
	}
	return s, nil
}

// orderedClaims is the payload NewToken signs. It keeps claims in the order they were
// added (encoding a map would sort them) and groups a repeated type into an array at
// the position of its first occurrence, as the .NET JwtPayload does.
type orderedClaims struct {
	names  []string
	values [][]json.RawMessage
	index  map[string]int
}

func (c *orderedClaims) addRaw(name string, v json.RawMessage) {
	if c.index == nil {
		c.index = make(map[string]int)
	}
	if i, ok := c.index[name]; ok {
		c.values[i] = append(c.values[i], v)
		return
	}
	c.index[name] = len(c.names)
	c.names = append(c.names, name)
	c.values = append(c.values, []json.RawMessage{v})
}

func (c *orderedClaims) add(name, value string) {
	b, _ := json.Marshal(value) // a string always marshals
	c.addRaw(name, b)
}

func (c *orderedClaims) addNumber(name string, n int64) {
	c.addRaw(name, strconv.AppendInt(nil, n, 10))
}

// MarshalJSON writes the claims as one JSON object.
func (c *orderedClaims) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range c.names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		b.Write(k)
		b.WriteByte(':')
		vs := c.values[i]
		if len(vs) == 1 {
			b.Write(vs[0])
			continue
		}
		b.WriteByte('[')
		for j, v := range vs {
			if j > 0 {
				b.WriteByte(',')
			}
			b.Write(v)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// The jwt.Claims methods are only used by golang-jwt's claims validation, which
// NewToken never runs; they report nothing.
func (c *orderedClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c *orderedClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (c *orderedClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *orderedClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *orderedClaims) GetSubject() (string, error)                  { return "", nil }
func (c *orderedClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// audienceBase returns "scheme://host" of endpoint with the port dropped and scheme
// and host lower-cased, as the SDK's AudienceBaseUrl; ok is false when endpoint is
// not an absolute URL.
func audienceBase(endpoint string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	return strings.ToLower(u.Scheme) + "://" + host, true
}

// ClientAudience returns the aud of a client token for hub on the service at
// endpoint: scheme://host/client/?hub=<lower hub>, with the port (and any path) of
// endpoint dropped, as the Azure SDK builds it. An endpoint that is not an absolute
// URL is used as written, without a trailing '/'.
func ClientAudience(endpoint, hub string) string {
	base, ok := audienceBase(endpoint)
	if !ok {
		base = strings.TrimRight(strings.TrimSpace(endpoint), "/")
	}
	return base + "/client/?hub=" + hubQueryValue(hub)
}

// ClientURL returns the URL a client connects to (the url of a negotiate answer):
// clientEndpoint as written, port and path included, with a trailing '/', followed by
// "client/?hub=" and the lower-cased hub.
func ClientURL(clientEndpoint, hub string) string {
	base := strings.TrimSpace(clientEndpoint)
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base + "client/?hub=" + hubQueryValue(hub)
}

// RESTAudience returns the aud of a REST token: scheme://host of endpoint (port
// dropped) followed by path, which may carry a query (the SDK signs
// "?api-version=..."; the validator ignores it).
func RESTAudience(endpoint, path string) string {
	base, ok := audienceBase(endpoint)
	if !ok {
		base = strings.TrimRight(strings.TrimSpace(endpoint), "/")
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return base + path
}

// hubQueryValue lower-cases hub and escapes only what would break the query, so that
// names allowed by the hub-name rule ([A-Za-z][A-Za-z0-9_`,.[\]]*) come out exactly as
// the SDK writes them.
func hubQueryValue(hub string) string {
	hub = strings.ToLower(hub)
	for i := 0; i < len(hub); i++ {
		if !hubSafe(hub[i]) {
			return url.QueryEscape(hub)
		}
	}
	return hub
}

func hubSafe(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("_`,.[]-", c) >= 0
}

// hostsEqual compares two host names ignoring case and port.
func hostsEqual(a, b string) bool {
	if h, _, err := net.SplitHostPort(a); err == nil {
		a = h
	}
	if h, _, err := net.SplitHostPort(b); err == nil {
		b = h
	}
	return strings.EqualFold(strings.Trim(a, "[]"), strings.Trim(b, "[]"))
}
