package restapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/hub"
)

// downHubs fails every operation the way a cluster node does without its broker.
type downHubs struct{ Hubs }

var errBrokerDown = errors.New("broker unreachable")

func (downHubs) SendAll(context.Context, string, *hub.Payload, []string) error { return errBrokerDown }
func (downHubs) ConnectionExists(context.Context, string, string) (bool, error) {
	return false, errBrokerDown
}
func (downHubs) AddUserToGroup(context.Context, string, string, string, *time.Duration) error {
	return errBrokerDown
}

// A message the service could not publish is a 503 with a clear code, never a 202;
// a failed existence check is a 503, never a 404 that would read as "absent".
func TestHubErrorsAre503(t *testing.T) {
	e := newEnv(t)
	e.handler = New(Options{Hubs: downHubs{}, Validator: &auth.Validator{Keys: []string{testKey}}})
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/hubs/chat/:send", `{"target":"t"}`},
		{http.MethodHead, "/api/hubs/chat/connections/c1", ""},
		{http.MethodPut, "/api/hubs/chat/groups/g/users/u", ""},
	} {
		w := e.do(c.method, c.path, c.body)
		wantStatus(t, w, http.StatusServiceUnavailable)
		if got := w.Header().Get("x-ms-error-code"); got != CodeUnavailable {
			t.Errorf("%s %s: x-ms-error-code = %q, want %q", c.method, c.path, got, CodeUnavailable)
		}
	}
}

// blockedHubs holds every broadcast and group send until release is closed.
type blockedHubs struct {
	Hubs
	entered chan struct{}
	release chan struct{}
}

func (b blockedHubs) SendAll(context.Context, string, *hub.Payload, []string) error {
	b.entered <- struct{}{}
	<-b.release
	return nil
}

func (b blockedHubs) SendGroup(ctx context.Context, h, _ string, p *hub.Payload, ex []string) error {
	return b.SendAll(ctx, h, p, ex)
}

// Broadcasts beyond MaxConcurrentBroadcasts wait at most BroadcastQueueWait and are
// then refused with 503, Retry-After and their own code, never left to pile up until
// the caller times out; a slot given back admits the next one.
func TestBroadcastsBeyondTheLimitAreRefusedQuickly(t *testing.T) {
	e := newEnv(t)
	bh := blockedHubs{entered: make(chan struct{}, 10), release: make(chan struct{})}
	e.handler = New(Options{Hubs: bh, Validator: &auth.Validator{Keys: []string{testKey}},
		MaxConcurrentBroadcasts: 1, BroadcastQueueWait: 50 * time.Millisecond})
	first := make(chan int, 1)
	go func() { first <- e.do(http.MethodPost, "/api/hubs/chat/:send", `{"target":"t"}`).Code }()
	select {
	case <-bh.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first broadcast did not start")
	}
	for _, path := range []string{"/api/hubs/chat/:send", "/api/hubs/chat/groups/g/:send"} {
		start := time.Now()
		w := e.do(http.MethodPost, path, `{"target":"t"}`)
		wantStatus(t, w, http.StatusServiceUnavailable)
		if got := w.Header().Get("x-ms-error-code"); got != CodeOverloaded {
			t.Errorf("%s: x-ms-error-code = %q, want %q", path, got, CodeOverloaded)
		}
		if got := w.Header().Get("Retry-After"); got != "1" {
			t.Errorf("%s: Retry-After = %q", path, got)
		}
		if d := time.Since(start); d < 50*time.Millisecond || d > 3*time.Second {
			t.Errorf("%s: refused after %v, want the 50ms wait", path, d)
		}
	}
	close(bh.release)
	select {
	case code := <-first:
		wantCode(t, code, http.StatusAccepted)
	case <-time.After(5 * time.Second):
		t.Fatal("the first broadcast was not answered")
	}
	wantStatus(t, e.do(http.MethodPost, "/api/hubs/chat/:send", `{"target":"t"}`), http.StatusAccepted)
}

func wantCode(t *testing.T, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d, want %d", got, want)
	}
}
