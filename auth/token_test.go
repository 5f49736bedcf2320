package auth

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// decodePart base64url-decodes one part of a token into a map.
func decodePart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func payloadJSON(t *testing.T, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestNewTokenClaims(t *testing.T) {
	tok := mustToken(t, testKey, TokenOptions{Audience: clientAud, UserID: "user-1", Issuer: "azure-signalr"})
	h := decodePart(t, tok, 0)
	if h["alg"] != "HS256" || h["typ"] != "JWT" {
		t.Errorf("header %v", h)
	}
	if _, ok := h["kid"]; ok {
		t.Errorf("kid present without KeyID: %v", h)
	}
	want := `{"aud":"` + clientAud + `","exp":` + itoa(testNow.Add(time.Hour).Unix()) +
		`,"iat":` + itoa(testNow.Unix()) + `,"nbf":` + itoa(testNow.Unix()) +
		`,"iss":"azure-signalr","asrs.s.uid":"user-1"}`
	if got := payloadJSON(t, tok); got != want {
		t.Errorf("payload\n got %s\nwant %s", got, want)
	}
	// The key is used as written: recompute the HMAC over the raw key bytes.
	parts := strings.Split(tok, ".")
	m := hmac.New(hs256, []byte(testKey))
	m.Write([]byte(parts[0] + "." + parts[1]))
	if got := base64.RawURLEncoding.EncodeToString(m.Sum(nil)); got != parts[2] {
		t.Errorf("signature %s, want HMAC over the key's UTF-8 bytes %s", parts[2], got)
	}
}

func TestNewTokenOptions(t *testing.T) {
	tok := mustToken(t, testKey, TokenOptions{Audience: clientAud, Algorithm: "hs512", KeyID: "kid-1", Lifetime: 5 * time.Minute})
	h := decodePart(t, tok, 0)
	if h["alg"] != "HS512" || h["kid"] != "kid-1" {
		t.Errorf("header %v", h)
	}
	p := decodePart(t, tok, 1)
	if exp, _ := p["exp"].(float64); int64(exp) != testNow.Add(5*time.Minute).Unix() {
		t.Errorf("exp %v", p["exp"])
	}
	if _, ok := p["iss"]; ok {
		t.Errorf("iss present without Issuer")
	}
	if _, ok := p["asrs.s.uid"]; ok {
		t.Errorf("asrs.s.uid present without UserID")
	}
}

func TestNewTokenExtraClaims(t *testing.T) {
	tok := mustToken(t, testKey, TokenOptions{Audience: clientAud, UserID: "u", Claims: []Claim{
		{"sub", "first"}, {"role", "a"}, {"aud", "mine"}, {"sub", "second"}, {"role", "b"},
		{"http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "c"},
		{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier", "nid"},
		{"nonce", "n"}, {"jti", "j"}, {"exp", "e"}, {"iat", "i"}, {"nbf", "b"}, {"iss", "s"},
		{"actort", "x"}, {"acr", "x"}, {"azp", "x"}, {"c_hash", "x"}, {"sub", "third"},
		{"asrs.s.uid", "dropped"}, {"asrs.s.derror", "True"},
	}})
	want := `{"aud":"` + clientAud + `","exp":` + itoa(testNow.Add(time.Hour).Unix()) +
		`,"iat":` + itoa(testNow.Unix()) + `,"nbf":` + itoa(testNow.Unix()) +
		`,"asrs.s.uid":"u","sub":"first","role":["a","b","c"],"asrs.u.aud":"mine","asrs.u.sub":["second","third"]` +
		`,"nameid":"nid","asrs.u.nonce":"n","asrs.u.jti":"j","asrs.u.exp":"e","asrs.u.iat":"i","asrs.u.nbf":"b","asrs.u.iss":"s"` +
		`,"asrs.u.actort":"x","asrs.u.acr":"x","asrs.u.azp":"x","asrs.u.c_hash":"x","asrs.s.derror":"True"}`
	if got := payloadJSON(t, tok); got != want {
		t.Errorf("payload\n got %s\nwant %s", got, want)
	}

	// The round trip gives the user's claims back under their own names.
	p, err := newValidator().ValidateClient(tok, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "u" {
		t.Errorf("UserID %q", p.UserID)
	}
	got := UserClaims(p.Claims)
	wantUser := []Claim{{"sub", "first"}, {"role", "a"}, {"role", "b"}, {"role", "c"}, {"aud", "mine"},
		{"sub", "second"}, {"sub", "third"}, {"nameid", "nid"}, {"nonce", "n"}, {"jti", "j"}, {"exp", "e"},
		{"iat", "i"}, {"nbf", "b"}, {"iss", "s"}, {"actort", "x"}, {"acr", "x"}, {"azp", "x"}, {"c_hash", "x"}}
	if len(got) != len(wantUser) {
		t.Fatalf("user claims %v\nwant %v", got, wantUser)
	}
	for i := range got {
		if got[i] != wantUser[i] {
			t.Errorf("user claim %d = %v, want %v", i, got[i], wantUser[i])
		}
	}
}

func TestNewTokenUserIDClaimWithoutUserID(t *testing.T) {
	tok := mustToken(t, testKey, TokenOptions{Audience: clientAud, Claims: []Claim{{"asrs.s.uid", "from-claims"}}})
	p, err := newValidator().ValidateClient(tok, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "from-claims" {
		t.Errorf("UserID %q", p.UserID)
	}
}

func TestNewTokenErrors(t *testing.T) {
	cases := []struct {
		name string
		key  string
		opts TokenOptions
		want error
	}{
		{"empty key", "", TokenOptions{Audience: clientAud}, nil},
		{"no audience", testKey, TokenOptions{}, nil},
		{"negative lifetime", testKey, TokenOptions{Audience: clientAud, Lifetime: -time.Second}, nil},
		{"HS384", testKey, TokenOptions{Audience: clientAud, Algorithm: "HS384"}, ErrAlgorithm},
		{"none", testKey, TokenOptions{Audience: clientAud, Algorithm: "none"}, ErrAlgorithm},
		{"empty claim type", testKey, TokenOptions{Audience: clientAud, Claims: []Claim{{"", "x"}}}, nil},
		{"too long", testKey, TokenOptions{Audience: clientAud, Claims: []Claim{{"pad", strings.Repeat("x", 3000)}}}, ErrTokenTooLong},
	}
	for _, c := range cases {
		tok, err := NewToken(c.key, c.opts)
		if err == nil || tok != "" {
			t.Errorf("%s: got %q, %v; want an error", c.name, tok, err)
			continue
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	_, err := NewToken(testKey, TokenOptions{Audience: clientAud, Claims: []Claim{{"pad", strings.Repeat("x", 3000)}}})
	if err == nil || err.Error() != "AccessToken must not be longer than 4K." {
		t.Errorf("too long: error text %v", err)
	}
}

func TestNewTokenLengthLimit(t *testing.T) {
	// Find the longest claim that still fits, then check one more byte does not.
	fits := func(n int) bool {
		_, err := NewToken(testKey, TokenOptions{Audience: clientAud, Now: fixedNow, Claims: []Claim{{"p", strings.Repeat("x", n)}}})
		return err == nil
	}
	n := 0
	for fits(n + 1) {
		n++
		if n > MaxTokenLength {
			t.Fatal("no limit")
		}
	}
	tok := mustToken(t, testKey, TokenOptions{Audience: clientAud, Claims: []Claim{{"p", strings.Repeat("x", n)}}})
	if len(tok) > MaxTokenLength || len(tok) < MaxTokenLength-3 {
		t.Fatalf("longest token has %d characters", len(tok))
	}
	if _, err := newValidator().ValidateClient(tok, "chat"); err != nil {
		t.Fatalf("a token of %d characters must validate: %v", len(tok), err)
	}
}

func TestNewTokenDefaultClock(t *testing.T) {
	tok, err := NewToken(testKey, TokenOptions{Audience: clientAud})
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&Validator{Keys: []string{testKey}}).ValidateClient(tok, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(p.Expires); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Errorf("expires in %v, want about 1h", d)
	}
}

func TestAudiences(t *testing.T) {
	cases := []struct{ got, want string }{
		{ClientAudience("https://foo.service.signalr.net", "Chat"), "https://foo.service.signalr.net/client/?hub=chat"},
		{ClientAudience("https://foo.service.signalr.net/", "chat"), "https://foo.service.signalr.net/client/?hub=chat"},
		{ClientAudience("http://localhost:8888", "chat"), "http://localhost/client/?hub=chat"},
		{ClientAudience("HTTP://LocalHost:8888/", "chat"), "http://localhost/client/?hub=chat"},
		{ClientAudience("https://proxy.example/signalr/", "chat"), "https://proxy.example/client/?hub=chat"},
		{ClientAudience("http://[::1]:8888", "chat"), "http://[::1]/client/?hub=chat"},
		{ClientAudience("https://h", "app_Hub.v1[x]"), "https://h/client/?hub=app_hub.v1[x]"},
		{ClientAudience("https://h", "a b&c"), "https://h/client/?hub=a+b%26c"},
		{ClientAudience("not a url/", "chat"), "not a url/client/?hub=chat"},
		{ClientURL("https://foo.service.signalr.net", "Chat"), "https://foo.service.signalr.net/client/?hub=chat"},
		{ClientURL("http://localhost:8888", "chat"), "http://localhost:8888/client/?hub=chat"},
		{ClientURL("http://localhost:8888/", "chat"), "http://localhost:8888/client/?hub=chat"},
		{ClientURL("https://proxy.example/signalr", "chat"), "https://proxy.example/signalr/client/?hub=chat"},
		{RESTAudience("http://localhost:8888", "/api/hubs/chat/:send?api-version=2022-06-01"), "http://localhost/api/hubs/chat/:send?api-version=2022-06-01"},
		{RESTAudience("https://foo.service.signalr.net/", "/api/health"), "https://foo.service.signalr.net/api/health"},
		{RESTAudience("https://foo.service.signalr.net", "api/v1/hubs/chat"), "https://foo.service.signalr.net/api/v1/hubs/chat"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d: got %q, want %q", i, c.got, c.want)
		}
	}
}

// TestAudienceRoundTrip checks that what the helpers build, the validator accepts,
// whatever the port of the endpoint the client used.
func TestAudienceRoundTrip(t *testing.T) {
	v := newValidator()
	for _, ep := range []string{"http://localhost:8888", "https://foo.service.signalr.net/", "http://127.0.0.1:1"} {
		tok := mustToken(t, testKey, TokenOptions{Audience: ClientAudience(ep, "Chat")})
		if _, err := v.ValidateClient(tok, "chat"); err != nil {
			t.Errorf("%s client: %v", ep, err)
		}
		if _, err := v.ValidateClient(tok, "other"); !errors.Is(err, ErrAudience) {
			t.Errorf("%s client other hub: %v", ep, err)
		}
		tok = mustToken(t, testKey, TokenOptions{Audience: RESTAudience(ep, "/api/hubs/chat/groups/g/:send?api-version=2022-06-01")})
		if _, err := v.ValidateREST(tok, "/api/hubs/chat/groups/g/:send"); err != nil {
			t.Errorf("%s rest: %v", ep, err)
		}
		if _, err := v.ValidateREST(tok, "/api/hubs/other/groups/g/:send"); !errors.Is(err, ErrAudience) {
			t.Errorf("%s rest other hub: %v", ep, err)
		}
	}
}
