package restapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/cluster"
	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/protocol"
)

const testKey = "restapi-test-access-key-0123456789"

// fakeClient is a hub.Client that records what the registry sends it.
type fakeClient struct {
	id, hub, user string
	proto         protocol.Protocol

	mu          sync.Mutex
	frames      [][]byte
	closed      bool
	closeReason string
}

func (c *fakeClient) ID() string                  { return c.id }
func (c *fakeClient) Hub() string                 { return c.hub }
func (c *fakeClient) UserID() string              { return c.user }
func (c *fakeClient) Protocol() protocol.Protocol { return c.proto }
func (c *fakeClient) Send(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, append([]byte(nil), frame...))
	return true
}
func (c *fakeClient) Close(reason string, _ bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed, c.closeReason = true, reason
}

func (c *fakeClient) rawFrames() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.frames...)
}

// invocations decodes every received frame with the client's protocol.
func (c *fakeClient) invocations(t *testing.T) []*protocol.Invocation {
	t.Helper()
	var out []*protocol.Invocation
	for _, f := range c.rawFrames() {
		d := protocol.NewDecoder(c.proto, 1<<20)
		d.Write(f)
		for {
			m, err := d.Next()
			if err != nil {
				t.Fatalf("%s: decode frame %q: %v", c.id, f, err)
			}
			if m == nil {
				break
			}
			inv, ok := m.(*protocol.Invocation)
			if !ok {
				t.Fatalf("%s: got %T, want *Invocation", c.id, m)
			}
			out = append(out, inv)
		}
	}
	return out
}

// targets lists the targets received, with the first string argument: "target:arg".
func (c *fakeClient) targets(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, inv := range c.invocations(t) {
		s := inv.Target
		if len(inv.Arguments) > 0 {
			var a any
			if err := inv.Arguments[0].Decode(&a); err != nil {
				t.Fatalf("decode argument: %v", err)
			}
			s += fmt.Sprintf(":%v", a)
		}
		out = append(out, s)
	}
	return out
}

func (c *fakeClient) isClosed() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.closeReason
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type issued struct {
	hub, user string
	lifetime  time.Duration
}

type env struct {
	t       *testing.T
	reg     *hub.Registry
	node    *cluster.Node
	clock   *fakeClock
	handler http.Handler
	issued  []issued
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	e.reg = hub.New(nil)
	node, err := cluster.NewNode(context.Background(), cluster.Options{Registry: e.reg,
		UserGroups: hub.NewUserGroups(hub.UserGroupOptions{Now: e.clock.Now})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	e.node = node
	e.handler = New(Options{
		Hubs:      e.node,
		Validator: &auth.Validator{Keys: []string{testKey}},
		IssueToken: func(h, user string, lifetime time.Duration) (string, error) {
			e.issued = append(e.issued, issued{h, user, lifetime})
			return "tok-" + h + "-" + user, nil
		},
		MaxBodyBytes: 64 << 10,
	})
	return e
}

// connect registers a fake client; proto is "json" or "messagepack".
func (e *env) connect(hubName, id, user, proto string) *fakeClient {
	p := protocol.JSON()
	if proto == "messagepack" {
		p = protocol.MessagePack()
	}
	c := &fakeClient{id: id, hub: hubName, user: user, proto: p}
	if err := e.node.Add(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// token signs a REST token whose audience is the path of target.
func (e *env) token(target string) string {
	e.t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := auth.NewToken(testKey, auth.TokenOptions{Audience: "http://example.com" + u.EscapedPath() + "?api-version=2022-06-01"})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type reqOpt func(*http.Request)

func withType(ct string) reqOpt { return func(r *http.Request) { r.Header.Set("Content-Type", ct) } }
func withToken(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}
func noAuth() reqOpt { return func(r *http.Request) { r.Header.Del("Authorization") } }

// do sends an authenticated request; a string body is sent as JSON.
func (e *env) do(method, target, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://example.com"+target, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	r.Header.Set("Authorization", "Bearer "+e.token(target))
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %q", w.Code, status, w.Body.String())
	}
}

func wantNotFound(t *testing.T, w *httptest.ResponseRecorder, code string) {
	t.Helper()
	wantStatus(t, w, http.StatusNotFound)
	if got := w.Header().Get("x-ms-error-code"); got != code {
		t.Fatalf("x-ms-error-code %q, want %q", got, code)
	}
}

// paths returns the current and the legacy path for one operation.
type pathStyle struct {
	name   string
	prefix string
}

var styles = []pathStyle{{"current", "/api/hubs/"}, {"legacy", "/api/v1/hubs/"}}
