package auth

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The Validator verifies tokens itself (decodeClaims, signedByAny) instead of through
// golang-jwt, which decoded each token twice through encoding/json's reflection. The
// code below is the golang-jwt version it replaced, kept as the reference: on any
// input, both must accept with the same principal or refuse with the same error.

// refClaims is the payload as golang-jwt hands it over.
type refClaims struct {
	parsedClaims
	err error // why UnmarshalJSON failed
}

func (c *refClaims) UnmarshalJSON(data []byte) error {
	names, values, err := decodeObject(data)
	if err != nil {
		c.err = fmt.Errorf("%w: payload: %w", ErrMalformed, err)
		return c.err
	}
	c.names, c.values = names, values
	return nil
}

// The jwt.Claims methods are not used: claims validation is switched off.
func (c *refClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c *refClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (c *refClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *refClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *refClaims) GetSubject() (string, error)                  { return "", nil }
func (c *refClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// referenceValidate is Validator.validate as it was with golang-jwt, and with the
// audiences parsed on every check (without the cache).
func referenceValidate(v *Validator, token string, audOK func(*url.URL) bool) (*Principal, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if limit := v.maxLength(); len(token) > limit {
		return nil, fmt.Errorf("%d characters, more than %d: %w", len(token), limit, ErrTokenTooLong)
	}
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: a JWT has three dot-separated parts", ErrMalformed)
	}
	if _, err := checkHeader(token[:strings.IndexByte(token, '.')]); err != nil {
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
	claims := &refClaims{}
	_, err := jwt.ParseWithClaims(token, claims,
		func(*jwt.Token) (any, error) { return jwt.VerificationKeySet{Keys: keys}, nil },
		jwt.WithValidMethods(validMethods),
		jwt.WithStrictDecoding(),
		jwt.WithoutClaimsValidation(),
	)
	if err != nil {
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
	if v.expired(exp) {
		return nil, ErrExpired
	}
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
			return &Principal{UserID: claims.userID(), Claims: claims.list(), Expires: exp}, nil
		}
	}
	return nil, ErrAudience
}

func referenceClientAudience(hub string) func(*url.URL) bool {
	return func(u *url.URL) bool {
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
}

func referenceRESTAudience(path string) func(*url.URL) bool {
	want := normalizePath(path)
	return func(u *url.URL) bool { return normalizePath(u.EscapedPath()) == want }
}

// checkAgainstReference validates tok with a fresh Validator (nothing cached) and
// with the reference, for a client audience of hub and a REST one of path, and fails
// on any difference. The Validator is then asked again, from its cache.
func checkAgainstReference(t *testing.T, tok, hub, path string) {
	t.Helper()
	for _, k := range []kind{client, rest} {
		v := newValidator()
		var p, want *Principal
		var err, wantErr error
		if k == client {
			p, err = v.ValidateClient(tok, hub)
			want, wantErr = referenceValidate(v, tok, referenceClientAudience(hub))
			if wantErr != nil {
				wantErr = fmt.Errorf("auth: client token: %w", wantErr)
			}
		} else {
			p, err = v.ValidateREST(tok, path)
			want, wantErr = referenceValidate(v, tok, referenceRESTAudience(path))
			if wantErr != nil {
				wantErr = fmt.Errorf("auth: REST token: %w", wantErr)
			}
		}
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(p, want) {
			t.Fatalf("%s token %q:\n got %+v, %v\nwant %+v, %v", k, tok, p, err, want, wantErr)
		}
		if k == client {
			p, err = v.ValidateClient(tok, hub)
		} else {
			p, err = v.ValidateREST(tok, path)
		}
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(p, want) {
			t.Fatalf("%s token %q again (cached):\n got %+v, %v\nwant %+v, %v", k, tok, p, err, want, wantErr)
		}
		if k == rest {
			// CheckREST is the REST handler's check without the Principal: same verdict,
			// same error, first with nothing cached and then from v's cache.
			for _, cv := range []*Validator{newValidator(), v} {
				if err := cv.CheckREST(tok, path); fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("CheckREST %q: got %v, want %v", tok, err, wantErr)
				}
			}
		}
	}
}

// FuzzValidateMatchesReference signs arbitrary header and payload JSON (and also
// spoils the signature and the segments' encoding) and compares the Validator with the
// golang-jwt reference.
func FuzzValidateMatchesReference(f *testing.F) {
	f.Add(hdr("HS256"), payload(clientAud, time.Hour, `"asrs.s.uid":"u","role":["a",1,true,null,{"x":[]}]`), byte(0))
	f.Add(hdr("HS512"), payload(restAud, time.Hour, `"nameid":["n"]`), byte(1))
	f.Add(hdr("HS384"), payload(restAud, time.Hour), byte(0))
	f.Add(`{"alg":"HS256","alg":"HS256"}`, `{"aud":["`+clientAud+`"],"exp":1.5e10}`, byte(2))
	f.Add(hdr("HS256"), `{"aud":"https://h/client/?hub=chat&hub=x","exp":-1e308,"exp":2}`, byte(3))
	f.Add(hdr("HS256"), `null`, byte(0))
	f.Add(hdr("HS256"), ` null `, byte(1))
	f.Add(hdr("HS256"), `[1]`, byte(0))
	f.Add(hdr("HS256"), `"x"`, byte(0))
	f.Add(hdr("HS256"), `{"aud":"`+clientAud+`","exp":9999999999} x`, byte(0))
	f.Add(hdr("HS256"), `{"aud":"`+clientAud+`","exp":9999999999}`+"\n", byte(4))
	f.Add(`{"alg":"HS256","crit":[]}`, payload(clientAud, time.Hour), byte(0))
	f.Fuzz(func(t *testing.T, header, pl string, spoil byte) {
		hub, path := "chat", restPath
		h := hs256
		if strings.Contains(header, "HS512") {
			h = hs512
		}
		tok := handToken(header, pl, testKey, h)
		switch spoil % 6 {
		case 1: // another key
			tok = handToken(header, pl, "not-a-configured-key", h)
		case 2: // a padded signature
			tok += "="
		case 3: // a signature with non-zero trailing bits (not strict)
			if n := len(tok); n > 0 && tok[n-1] != 'A' {
				tok = tok[:n-1] + string(tok[n-1]+1)
			}
		case 4: // the payload's last character changed
			if i := strings.LastIndexByte(tok, '.'); i > 1 {
				tok = tok[:i-1] + "_" + tok[i:]
			}
		case 5: // no signature
			tok = handToken(header, pl, "", nil)
		}
		checkAgainstReference(t, tok, hub, path)
	})
}

// FuzzValidateMatchesReferenceRaw compares the two on arbitrary token strings.
func FuzzValidateMatchesReferenceRaw(f *testing.F) {
	for _, s := range []string{
		"", ".", "..", "...", "a.b.c", "e30.e30.", "eyJhbGciOiJIUzI1NiJ9.bnVsbA.",
		mustToken(f, testKey, TokenOptions{Audience: clientAud, UserID: "u", Claims: []Claim{{"role", "a"}, {"role", "b"}}}),
		mustToken(f, testKey2, TokenOptions{Audience: restAud, Algorithm: "HS512"}),
		handToken(hdr("none"), payload(clientAud, time.Hour), "", nil),
	} {
		f.Add(s, "chat", restPath)
	}
	f.Add(handToken(hdr("HS256"), payload("https://h/client?hub=Chat&x=%zz", time.Hour), testKey, hs256), "chat", restPath)
	f.Add(handToken(hdr("HS256"), payload("wss://h/api/hubs/a%2Fb/:send/", time.Hour), testKey, hs256), "", "/api/hubs/a%2fb/:send")
	f.Fuzz(func(t *testing.T, tok, hub, path string) {
		checkAgainstReference(t, tok, hub, path)
	})
}
