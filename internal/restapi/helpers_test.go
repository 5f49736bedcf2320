package restapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/cluster"
	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
	"github.com/signalbox-io/signalbox/protocol"
)

const testKey = "restapi-test-access-key-0123456789"

type issued struct {
	hub, user string
	lifetime  time.Duration
}

type env struct {
	t       *testing.T
	reg     *hub.Registry
	node    *cluster.Node
	clock   *hubtest.Clock
	handler http.Handler
	issued  []issued
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: hubtest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
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
func (e *env) connect(hubName, id, user, proto string) *hubtest.Client {
	p := protocol.JSON()
	if proto == "messagepack" {
		p = protocol.MessagePack()
	}
	c := hubtest.NewClient(hubName, id, user, p)
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
