package identity

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"

	"github.com/signalbox-io/signalbox/auth"
)

// startProvider serves a Provider on loopback and returns it with its issuer URL.
func startProvider(t *testing.T, alg string) (*Provider, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	p, err := NewProvider("http://"+srv.Listener.Addr().String(), "secret-header", &ProviderOptions{Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return p, srv
}

func newVerifier(t *testing.T, issuer string, allow ...string) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierOptions{Issuer: issuer, Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAzidentityManagedIdentity: azidentity's ManagedIdentityCredential, configured only
// by IDENTITY_ENDPOINT and IDENTITY_HEADER, gets tokens from the Provider that the
// Verifier accepts, for the system-assigned and a user-assigned identity.
func TestAzidentityManagedIdentity(t *testing.T) {
	// MSAL caches managed identity tokens per process by resource and identity, so
	// each provider gets its own audience.
	for alg, aud := range map[string]string{"RS256": DefaultAudience, "ES256": "api://signalbox-es256"} {
		t.Run(alg, func(t *testing.T) {
			p, srv := startProvider(t, alg)
			t.Setenv("IDENTITY_ENDPOINT", srv.URL+TokenPath)
			t.Setenv("IDENTITY_HEADER", "secret-header")
			v, err := NewVerifier(VerifierOptions{Issuer: p.Issuer(), Audience: aud})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for _, tc := range []struct {
				clientID string
				want     Identity
			}{
				{"", SystemAssigned()},
				{"8d0e6a24-0d5b-4b38-9b35-3c1ad8b5f0a1", UserAssigned("8d0e6a24-0d5b-4b38-9b35-3c1ad8b5f0a1")},
			} {
				opts := &azidentity.ManagedIdentityCredentialOptions{}
				if tc.clientID != "" {
					opts.ID = azidentity.ClientID(tc.clientID)
				}
				cred, err := azidentity.NewManagedIdentityCredential(opts)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{aud + "/.default"}})
				if err != nil {
					t.Fatalf("GetToken(client %q): %v", tc.clientID, err)
				}
				if until := time.Until(tok.ExpiresOn); until < 50*time.Minute || until > 61*time.Minute {
					t.Errorf("ExpiresOn in %v, want about an hour", until)
				}
				id, err := v.Verify(ctx, tok.Token)
				if err != nil {
					t.Fatalf("Verify(client %q): %v", tc.clientID, err)
				}
				if id != tc.want {
					t.Errorf("identity %+v, want %+v", id, tc.want)
				}
			}
		})
	}
}

func TestStableIdentities(t *testing.T) {
	a, b := UserAssigned("x"), UserAssigned("x")
	if a != b || a.ClientID != "x" || a.ObjectID == UserAssigned("y").ObjectID {
		t.Fatalf("ids not stable per client id: %+v %+v", a, b)
	}
	s := SystemAssigned()
	if s.ClientID == "" || s.ObjectID == "" || s == a {
		t.Fatalf("system-assigned identity %+v", s)
	}
	if len(s.ObjectID) != 36 || s.ObjectID[14] != '4' {
		t.Errorf("object id %q is not UUID-shaped", s.ObjectID)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	_, srv := startProvider(t, "RS256")
	get := func(query string, header string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+TokenPath+"?"+query, nil)
		if header != "" {
			req.Header.Set("X-IDENTITY-HEADER", header)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	const ok = "api-version=2019-08-01&resource=https://signalr.azure.com"
	if st, _ := get(ok, ""); st != http.StatusUnauthorized {
		t.Errorf("no header: %d, want 401", st)
	}
	if st, _ := get(ok, "wrong"); st != http.StatusUnauthorized {
		t.Errorf("wrong header: %d, want 401", st)
	}
	if st, _ := get("api-version=2019-08-01", "secret-header"); st != http.StatusBadRequest {
		t.Errorf("no resource: %d, want 400", st)
	}
	if st, _ := get("api-version=2017-09-01&resource=r", "secret-header"); st != http.StatusBadRequest {
		t.Errorf("old api-version: %d, want 400", st)
	}
	st, body := get("api-version=2019-08-01&scope=https://signalr.azure.com/.default&client_id=abc", "secret-header")
	if st != http.StatusOK || body["resource"] != DefaultAudience || body["client_id"] != "abc" || body["token_type"] != "Bearer" {
		t.Errorf("scope form: %d %v", st, body)
	}
	if exp, _ := body["expires_on"].(string); len(exp) < 10 {
		t.Errorf("expires_on missing: %v", body)
	}
}

// craft signs claims with alg and key; header extras are merged in.
func craft(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVerifierRefusals: every way a token can be wrong is refused with ErrUntrusted,
// and a valid token of an identity off the allow-list with auth.ErrForbidden.
func TestVerifierRefusals(t *testing.T) {
	p, _ := startProvider(t, "RS256")
	other, _ := startProvider(t, "RS256")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	allowed := UserAssigned("allowed-app")
	v := newVerifier(t, p.Issuer(), allowed.ClientID)

	good, _, _ := p.Token(allowed, DefaultAudience)
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}

	expiredP, err := NewProvider(p.Issuer(), "h", &ProviderOptions{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	expiredP.key, expiredP.kid = p.key, p.kid // the trusted key, an old clock
	expired, _, _ := expiredP.Token(allowed, DefaultAudience)
	wrongAud, _, _ := p.Token(allowed, "https://management.azure.com")
	untrusted, _, _ := other.Token(allowed, DefaultAudience)
	// The other issuer's key under the trusted issuer's name and kid.
	forged, _, _ := func() (string, time.Time, error) {
		f := *other
		f.issuer, f.kid = p.issuer, p.kid
		return f.Token(allowed, DefaultAudience)
	}()
	notAllowed, _, _ := p.Token(UserAssigned("someone-else"), DefaultAudience)

	// Alg confusion: HS256 with the issuer's public key as the HMAC secret, and none.
	der, err := x509.MarshalPKIXPublicKey(p.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	claims := jwt.MapClaims{"iss": p.issuer, "aud": DefaultAudience, "oid": allowed.ObjectID, "appid": allowed.ClientID, "exp": time.Now().Add(time.Hour).Unix()}
	hsPEM := craft(t, jwt.SigningMethodHS256, pemKey, claims, map[string]any{"kid": p.kid})
	hsDER := craft(t, jwt.SigningMethodHS256, der, claims, map[string]any{"kid": p.kid})
	none := craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims, nil)
	// RS256 header on an ES256 signature made with the right kid is not a valid token either.
	esP, _ := startProvider(t, "ES256")
	esAsRS := func() string {
		tok, _, _ := esP.Token(allowed, DefaultAudience)
		parts := strings.Split(tok, ".")
		h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": p.kid, "typ": "JWT"})
		parts[0] = base64.RawURLEncoding.EncodeToString(h)
		return strings.Join(parts, ".")
	}()
	// The payload changed after signing.
	tampered := func() string {
		parts := strings.Split(good, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		m["oid"] = "00000000-0000-4000-8000-000000000000"
		b, _ := json.Marshal(m)
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(parts, ".")
	}()

	for name, tc := range map[string]struct {
		token string
		want  error
	}{
		"expired":         {expired, auth.ErrExpired},
		"wrong audience":  {wrongAud, ErrUntrusted},
		"untrusted":       {untrusted, ErrUntrusted},
		"forged key":      {forged, ErrUntrusted},
		"HS256 with PEM":  {hsPEM, ErrUntrusted},
		"HS256 with DER":  {hsDER, ErrUntrusted},
		"none":            {none, ErrUntrusted},
		"ES256 as RS256":  {esAsRS, ErrUntrusted},
		"tampered":        {tampered, ErrUntrusted},
		"garbage":         {"a.b.c", ErrUntrusted},
		"not allowed":     {notAllowed, auth.ErrForbidden},
		"empty":           {"", ErrUntrusted},
		"access-key-like": {craft(t, jwt.SigningMethodHS256, []byte("k"), jwt.MapClaims{"aud": "x"}, nil), ErrUntrusted},
	} {
		_, err := v.Verify(ctx, tc.token)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
		if errors.Is(tc.want, ErrUntrusted) && errors.Is(err, auth.ErrForbidden) {
			t.Errorf("%s: forbidden instead of untrusted", name)
		}
	}
}

// TestVerifierRefreshesKeys: a provider restarted with a new key (same issuer) is
// trusted again without restarting the verifier: the unknown kid makes it fetch the
// JWKS again, but not more often than minRefetch, whatever kids tokens make up.
func TestVerifierRefreshesKeys(t *testing.T) {
	p, srv := startProvider(t, "RS256")
	now := time.Now()
	v, err := NewVerifier(VerifierOptions{Issuer: p.Issuer(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, _, _ := p.Token(SystemAssigned(), DefaultAudience)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	p2, err := NewProvider(p.Issuer(), "secret-header", &ProviderOptions{Algorithm: "ES256", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p2.Handler()
	tok2, _, _ := p2.Token(SystemAssigned(), DefaultAudience)
	for i := 0; i < 5; i++ {
		if _, err := v.Verify(ctx, tok2); err == nil {
			t.Fatal("a key unknown to the cache was trusted before the JWKS was fetched again")
		}
	}
	if v.keys.fetches != 1 {
		t.Fatalf("%d JWKS fetches within minRefetch, want 1", v.keys.fetches)
	}
	now = now.Add(minRefetch)
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Fatalf("token of the restarted provider: %v", err)
	}
	if _, err := v.Verify(ctx, tok2); err != nil || v.keys.fetches != 2 {
		t.Fatalf("cached key: %v, %d fetches", err, v.keys.fetches)
	}
	// The old key is gone from the JWKS: its tokens fail without another fetch.
	if _, err := v.Verify(ctx, tok); err == nil || v.keys.fetches != 2 {
		t.Fatalf("old key: %v, %d fetches", err, v.keys.fetches)
	}
}

// TestVerifierIssuerDown: an unreachable issuer refuses tokens (no panic, no hang),
// and discovery is retried once it is back.
func TestVerifierIssuerDown(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	now := time.Now()
	v, err := NewVerifier(VerifierOptions{Issuer: issuer, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProvider(issuer, "h", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := p.Token(SystemAssigned(), DefaultAudience)
	srv.Config.Handler = http.NotFoundHandler()
	srv.Start()
	defer srv.Close()
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("accepted a token while discovery fails")
	}
	srv.Config.Handler = p.Handler()
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("discovery retried before discoveryRetry")
	}
	now = now.Add(discoveryRetry + time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after the issuer came back: %v", err)
	}
}
