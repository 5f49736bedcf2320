package management

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/connection"
)

func TestClientTokenAccessKey(t *testing.T) {
	f := newFakeService(t, testKey)
	ep, err := connection.NewEndpoint("", connection.Primary,
		"Endpoint="+f.srv.URL+";AccessKey="+testKey+";ClientEndpoint=https://public.example.com/signalr", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, nil, ep)
	acc, err := c.ClientToken(context.Background(), "Chat", &ClientTokenOptions{
		UserID: "alice", Claims: []auth.Claim{{Type: "role", Value: "admin"}}, Lifetime: 10 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if acc.URL != "https://public.example.com/signalr/client/?hub=chat" {
		t.Errorf("url %q", acc.URL)
	}
	v := auth.Validator{Keys: []string{testKey}}
	p, err := v.ValidateClient(acc.AccessToken, "chat")
	if err != nil {
		t.Fatalf("ValidateClient: %v", err)
	}
	if p.UserID != "alice" {
		t.Errorf("user %q", p.UserID)
	}
	claims := jwtClaims(acc.AccessToken)
	if claims["aud"] != "http://127.0.0.1/client/?hub=chat" || claims["role"] != "admin" {
		t.Errorf("claims %v", claims)
	}
	if d := time.Until(p.Expires); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("lifetime %v", d)
	}
	b, _ := json.Marshal(acc)
	if !strings.HasPrefix(string(b), `{"url":"https://public.example.com/signalr/client/?hub=chat","accessToken":"`) {
		t.Errorf("JSON %s", b)
	}
	if _, err := c.ClientToken(context.Background(), "", nil); err == nil {
		t.Error("empty hub: no error")
	}
}

func TestClientTokenForEndpoint(t *testing.T) {
	a, b := newFakeService(t, testKey), newFakeService(t, "other-key-other-key-other-key-other-key-1234")
	epA, epB := a.endpoint("a", connection.Primary), b.endpoint("b", connection.Secondary)
	c := newTestClient(t, nil, epA, epB)
	acc, err := c.ClientToken(context.Background(), "chat", &ClientTokenOptions{Endpoint: &epB})
	if err != nil {
		t.Fatal(err)
	}
	if acc.Endpoint.Name != "b" || !strings.HasPrefix(acc.URL, b.srv.URL+"/client/") {
		t.Errorf("access %+v", acc)
	}
	if _, err := (&auth.Validator{Keys: []string{b.key}}).ValidateClient(acc.AccessToken, "chat"); err != nil {
		t.Errorf("not signed with b's key: %v", err)
	}
	unknown := epB
	unknown.Name = "nope"
	if _, err := c.ClientToken(context.Background(), "chat", &ClientTokenOptions{Endpoint: &unknown}); err == nil {
		t.Error("unknown endpoint: no error")
	}
}

func TestGenerateClientToken(t *testing.T) {
	f := newFakeService(t, testKey)
	f.setRespond(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"token":"server-token"}`))
	})
	c := newTestClient(t, nil, f.endpoint("", connection.Primary))
	acc, err := c.GenerateClientToken(context.Background(), "Chat", &GenerateClientTokenOptions{
		UserID: "u 1", Lifetime: 61 * time.Second, Roles: []string{"webpubsub.joinLeaveGroup"}, Groups: []string{"g1", "g2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if acc.AccessToken != "server-token" || acc.URL != f.srv.URL+"/client/?hub=chat" {
		t.Errorf("access %+v", acc)
	}
	r := f.requests()[0]
	if r.Method != "POST" || r.Path != "/api/hubs/chat/:generateToken" ||
		r.Query != "api-version=2022-11-01&group=g1&group=g2&minutesToExpire=2&role=webpubsub.joinLeaveGroup&userId=u+1" {
		t.Errorf("request %s %s?%s", r.Method, r.Path, r.Query)
	}
	if r.Claims["aud"] != "http://127.0.0.1/api/hubs/chat/:generateToken?api-version=2022-11-01" {
		t.Errorf("aud %v", r.Claims["aud"])
	}
	f.setRespond(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) })
	if _, err := c.GenerateClientToken(context.Background(), "chat", nil); err == nil {
		t.Error("response without token: no error")
	}
}

// fakeCredential hands out a fixed Entra token and counts the calls.
type fakeCredential struct {
	token string
	calls atomic.Int32
	err   error
}

func (f *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	if f.err != nil {
		return azcore.AccessToken{}, f.err
	}
	if len(o.Scopes) != 1 || o.Scopes[0] != Scope {
		return azcore.AccessToken{}, errors.New("unexpected scopes")
	}
	return azcore.AccessToken{Token: f.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestIdentityEndpoint(t *testing.T) {
	f := newFakeService(t, "")
	f.entra = "entra-token"
	var keyFetches atomic.Int32
	var keyStatus atomic.Int32
	keyStatus.Store(200)
	keys := []string{"fetched-key-1-fetched-key-1-fetched-key-1-aa", "fetched-key-2-fetched-key-2-fetched-key-2-bb"}
	f.setRespond(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/auth/accessKey" {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		n := keyFetches.Add(1)
		if s := int(keyStatus.Load()); s != 200 {
			w.WriteHeader(s)
			return
		}
		i := min(int(n)-1, 1)
		json.NewEncoder(w).Encode(map[string]string{"KeyId": "kid" + string(rune('1'+i)), "AccessKey": keys[i]})
	})
	cred := &fakeCredential{token: "entra-token"}
	opts := &connection.Options{NewCredential: func(connection.IdentitySettings) (azcore.TokenCredential, error) { return cred, nil }}
	eps, err := connection.FromMap(map[string]string{"AzureSignalRConnectionString:serviceUri": f.srv.URL}).Resolve("", opts)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	c := newTestClient(t, &ClientOptions{Now: clock.Now}, eps...)
	ctx := context.Background()

	// REST calls carry the Entra token, fetched once.
	for range 3 {
		if err := c.SendToAll(ctx, "chat", "t", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := cred.calls.Load(); n != 1 {
		t.Errorf("GetToken called %d times, want 1 (cached)", n)
	}

	// Client tokens are signed with the fetched key, kid = KeyId.
	token := func() string {
		t.Helper()
		acc, err := c.ClientToken(ctx, "chat", &ClientTokenOptions{UserID: "u"})
		if err != nil {
			t.Fatalf("ClientToken: %v", err)
		}
		return acc.AccessToken
	}
	verify := func(tok, key, kid string) {
		t.Helper()
		v := auth.Validator{Keys: []string{key}, Now: clock.Now}
		if _, err := v.ValidateClient(tok, "chat"); err != nil {
			t.Errorf("token not signed with %s: %v", kid, err)
		}
		if h := jwtHeader(tok); h["kid"] != kid {
			t.Errorf("kid %v, want %s", h["kid"], kid)
		}
	}
	verify(token(), keys[0], "kid1")
	verify(token(), keys[0], "kid1")
	if n := keyFetches.Load(); n != 1 {
		t.Errorf("%d key fetches, want 1", n)
	}

	// After the refresh interval a new key is fetched.
	clock.Add(56 * time.Minute)
	verify(token(), keys[1], "kid2")
	if n := keyFetches.Load(); n != 2 {
		t.Errorf("%d key fetches, want 2", n)
	}

	// A failed refresh keeps the previous key while it is young enough, and is not
	// retried at once.
	keyStatus.Store(500)
	clock.Add(56 * time.Minute)
	verify(token(), keys[1], "kid2")
	verify(token(), keys[1], "kid2")
	if n := keyFetches.Load(); n != 3 {
		t.Errorf("%d key fetches, want 3", n)
	}
	// Too old: the error surfaces.
	clock.Add(70 * time.Minute)
	if _, err := c.ClientToken(ctx, "chat", nil); err == nil {
		t.Error("expired key used")
	}
	keyStatus.Store(403)
	if _, err := c.ClientToken(ctx, "chat", nil); err == nil || !strings.Contains(err.Error(), "don't have the permission") {
		t.Errorf("403: %v", err)
	}
}

func TestIdentityKeyResponseErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"AccessKey":"k"}`, "Missing required <KeyId> field."},
		{`{"KeyId":"id"}`, "Missing required <AccessKey> field."},
		{`not json`, "invalid response"},
	} {
		f := newFakeService(t, "")
		f.entra = "e"
		f.setRespond(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(tc.body)) })
		ep := connection.Endpoint{Endpoint: f.srv.URL, Credential: &fakeCredential{token: "e"}}
		c := newTestClient(t, nil, ep)
		if _, err := c.ClientToken(context.Background(), "chat", nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("body %s: error %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestCredentialError(t *testing.T) {
	f := newFakeService(t, "")
	ep := connection.Endpoint{Endpoint: f.srv.URL, Credential: &fakeCredential{err: errors.New("no identity")}}
	c := newTestClient(t, nil, ep)
	err := c.SendToAll(context.Background(), "chat", "t", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no identity") {
		t.Errorf("error %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests without a token", n)
	}
}

func TestEntraTokenRenewedOn401(t *testing.T) {
	f := newFakeService(t, "")
	f.entra = "fresh"
	cred := &rotatingCredential{tokens: []string{"stale", "fresh"}}
	ep := connection.Endpoint{Endpoint: f.srv.URL, Credential: cred}
	c := newTestClient(t, nil, ep)
	if err := c.SendToAll(context.Background(), "chat", "t", nil, nil); err != nil {
		t.Fatalf("error %v", err)
	}
	f.reset() // the first request was rejected on purpose
	if n := cred.calls.Load(); n != 2 {
		t.Errorf("GetToken called %d times, want 2", n)
	}
	// Still unauthorized with the fresh token: the 401 surfaces, no loop.
	f.entra = "other"
	err := c.SendToAll(context.Background(), "chat", "t", nil, nil)
	f.reset()
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 401 {
		t.Errorf("error %v", err)
	}
}

// rotatingCredential returns its tokens in order, then the last one.
type rotatingCredential struct {
	tokens []string
	calls  atomic.Int32
}

func (r *rotatingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	i := min(int(r.calls.Add(1))-1, len(r.tokens)-1)
	return azcore.AccessToken{Token: r.tokens[i], ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestStartPrefetchesSigningKey(t *testing.T) {
	f := newFakeService(t, "")
	f.entra = "e"
	fetched := make(chan struct{}, 4)
	f.setRespond(func(w http.ResponseWriter, r *http.Request) {
		fetched <- struct{}{}
		w.Write([]byte(`{"KeyId":"k1","AccessKey":"prefetched-key-prefetched-key-prefetched-k"}`))
	})
	c, err := NewClient([]connection.Endpoint{{Endpoint: f.srv.URL, Credential: &fakeCredential{token: "e"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fetched:
	case <-time.After(5 * time.Second):
		t.Fatal("signing key not fetched after Start")
	}
	// The first client token does not wait for another fetch.
	acc, err := c.ClientToken(context.Background(), "chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	if jwtHeader(acc.AccessToken)["kid"] != "k1" {
		t.Errorf("kid %v", jwtHeader(acc.AccessToken)["kid"])
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(fetched); n != 0 {
		t.Errorf("%d extra key fetches", n)
	}
}

// blockingCredential's GetToken waits until release is closed (or its ctx ends).
type blockingCredential struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingCredential) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
		return azcore.AccessToken{Token: "tok", ExpiresOn: time.Now().Add(time.Hour)}, nil
	case <-ctx.Done():
		return azcore.AccessToken{}, ctx.Err()
	}
}

// A call waiting for another call's slow token fetch still honours its own context.
func TestEntraTokenWaitHonoursContext(t *testing.T) {
	f := newFakeService(t, "")
	f.entra = "tok"
	cred := &blockingCredential{entered: make(chan struct{}, 1), release: make(chan struct{})}
	c := newTestClient(t, nil, connection.Endpoint{Endpoint: f.srv.URL, Credential: cred})
	first := make(chan error, 1)
	go func() { first <- c.SendToAll(context.Background(), "chat", "t", nil, nil) }()
	select {
	case <-cred.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first call did not ask for a token")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	second := make(chan error, 1)
	go func() { second <- c.SendToAll(ctx, "chat", "t", nil, nil) }()
	secondDone := false
	select {
	case err := <-second:
		secondDone = true
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("second call: %v, want its context's deadline", err)
		}
	case <-time.After(3 * time.Second):
		t.Error("the second call ignored its context while the first fetched a token")
	}
	close(cred.release)
	if err := <-first; err != nil {
		t.Errorf("first call: %v", err)
	}
	if !secondDone {
		<-second
	}
}
