package functions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/signalbox-io/signalbox/auth"
)

const svcKey = "fake-service-access-key-0123456789"

// fakeService records REST calls the way a SignalR service would receive them.
type fakeService struct {
	*httptest.Server
	down  atomic.Bool // health checks fail
	mu    sync.Mutex
	calls []string // "METHOD path body"
}

func newFakeService(t *testing.T) *fakeService {
	t.Helper()
	f := &fakeService{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/health" {
			if f.down.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		tok := auth.TokenFromRequest(r)
		v := &auth.Validator{Keys: []string{svcKey}}
		if _, err := v.ValidateREST(tok, r.URL.Path); err != nil {
			http.Error(w, "unauthorized: "+err.Error(), http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.calls = append(f.calls, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeService) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeService) connectionString() string {
	return "Endpoint=" + f.URL + ";AccessKey=" + svcKey + ";Version=1.0;"
}

func newTestService(t *testing.T, f *fakeService) *Service {
	t.Helper()
	s, err := NewFromMap(map[string]string{"AzureSignalRConnectionString": f.connectionString()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// unsignedJWT builds an idToken as an identity provider would (the signature is not checked).
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(b) + "." + enc([]byte("sig"))
}

func parseToken(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(svcKey), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		t.Fatalf("token does not verify with the access key: %v", err)
	}
	return claims
}

func TestConnectionInfoToken(t *testing.T) {
	f := newFakeService(t)
	s := newTestService(t, f)
	u, _ := url.Parse(f.URL)

	idToken := unsignedJWT(t, map[string]any{
		"sub": "alice", "name": "Alice", "aud": "my-app", "exp": 99, "nonce": "n",
		"roles": []string{"admin", "user"}, "asrs.s.uid": "mallory", "ignored": "x",
	})
	info, err := s.ConnectionInfo(context.Background(), "Chat", &ConnectionInfoOptions{
		UserID: "alice", IDToken: idToken,
		ClaimTypeList: []string{"sub", "name", "aud", "exp", "nonce", "roles", "asrs.s.uid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := f.URL + "/client/?hub=chat"; info.URL != want {
		t.Fatalf("url = %q, want %q", info.URL, want)
	}
	c := parseToken(t, info.AccessToken)
	checks := map[string]any{
		"aud":               "http://" + u.Hostname() + "/client/?hub=chat",
		"asrs.s.uid":        "alice",
		"sub":               "alice",
		"name":              "Alice",
		"asrs.u.aud":        "my-app",
		"asrs.u.exp":        "99",
		"asrs.u.nonce":      "n",
		"asrs.u.asrs.s.uid": "mallory",
	}
	for k, want := range checks {
		if c[k] != want {
			t.Errorf("claim %s = %v, want %v", k, c[k], want)
		}
	}
	if roles, _ := c["roles"].([]any); len(roles) != 2 || roles[0] != "admin" {
		t.Errorf("roles = %v, want [admin user]", c["roles"])
	}
	if _, ok := c["ignored"]; ok {
		t.Error("a claim outside claimTypeList was copied")
	}
	exp, _ := c.GetExpirationTime()
	iat, _ := c.GetIssuedAt()
	if exp == nil || iat == nil || exp.Sub(iat.Time) != time.Hour {
		t.Errorf("lifetime = exp %v - iat %v, want 1h", exp, iat)
	}

	info, err = s.ConnectionInfo(context.Background(), "chat", &ConnectionInfoOptions{Lifetime: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c = parseToken(t, info.AccessToken)
	exp, _ = c.GetExpirationTime()
	iat, _ = c.GetIssuedAt()
	if exp.Sub(iat.Time) != 5*time.Minute || c["asrs.s.uid"] != nil {
		t.Errorf("anonymous 5-minute token: claims %v", c)
	}

	_, err = s.ConnectionInfo(context.Background(), "chat", &ConnectionInfoOptions{
		Claims: []auth.Claim{{Type: "big", Value: strings.Repeat("x", 5000)}},
	})
	if !errors.Is(err, ErrAccessTokenTooLong) || err.Error() != "AccessToken must not be longer than 4K." {
		t.Fatalf("err = %v, want the 4K error", err)
	}
	if _, err := s.ConnectionInfo(context.Background(), "chat", &ConnectionInfoOptions{IDToken: "garbage", ClaimTypeList: []string{"a"}}); err == nil {
		t.Fatal("an undecodable idToken must fail")
	}
}

func TestDecodeIDToken(t *testing.T) {
	tok := unsignedJWT(t, map[string]any{"a": "1", "n": 2.5, "b": true, "l": []any{"x", 3}, "o": map[string]any{"k": "v"}})
	claims, err := DecodeIDToken("Bearer " + tok)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, c := range claims {
		got[c.Type] = append(got[c.Type], c.Value)
	}
	want := map[string][]string{"a": {"1"}, "n": {"2.5"}, "b": {"true"}, "l": {"x", "3"}, "o": {`{"k":"v"}`}}
	for k, v := range want {
		if strings.Join(got[k], "|") != strings.Join(v, "|") {
			t.Errorf("claim %s = %v, want %v", k, got[k], v)
		}
	}
	for _, bad := range []string{"", "a.b", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".c"} {
		if _, err := DecodeIDToken(bad); err == nil {
			t.Errorf("DecodeIDToken(%q) must fail", bad)
		}
	}
}

func FuzzDecodeIDToken(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, p := range []string{`{"sub":"a"}`, `{"l":[1,[2]]}`, `{}`, `[`, `{"a":{"b":null}}`} {
		f.Add("h." + enc([]byte(p)) + ".s")
	}
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := DecodeIDToken(tok)
		if err == nil && claims == nil && !strings.Contains(tok, ".") {
			t.Fatal("success without a payload")
		}
	})
}

func TestUserClaimsRenaming(t *testing.T) {
	var in []auth.Claim
	for _, typ := range []string{"sub", "sub", "iat", "jti", "asrs.s.aut", "role", "c_hash"} {
		in = append(in, auth.Claim{Type: typ, Value: "v"})
	}
	got := userClaims(in)
	want := []string{"sub", "asrs.u.sub", "asrs.u.iat", "asrs.u.jti", "asrs.u.asrs.s.aut", "role", "asrs.u.c_hash"}
	for i, c := range got {
		if c.Type != want[i] {
			t.Fatalf("claim %d = %s, want %s", i, c.Type, want[i])
		}
	}
}
