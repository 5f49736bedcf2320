package upstream

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/signalbox-io/signalbox/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitFor = 5 * time.Second

// request is what the fake upstream received.
type request struct {
	Header http.Header
	Body   []byte
	Path   string // escaped path
	Query  string
}

// fake is a real HTTP upstream on loopback that records every request, then lets handle
// answer it.
type fake struct {
	srv  *httptest.Server
	reqs chan request
	mu   sync.Mutex
	all  []request
}

func newFake(t testing.TB, handle http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{reqs: make(chan request, 4096)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := request{Header: r.Header.Clone(), Body: body, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery}
		f.mu.Lock()
		f.all = append(f.all, rec)
		f.mu.Unlock()
		select {
		case f.reqs <- rec:
		default:
		}
		if handle != nil {
			handle(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(waitFor):
		t.Fatal("timed out waiting for an upstream request")
		return request{}
	}
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.all)
}

// newUpstream builds an Upstream whose Close runs at cleanup (before the fake closes).
func newUpstream(t testing.TB, opts Options) *Upstream {
	t.Helper()
	u, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_ = u.Close(ctx)
	})
	return u
}

// replies collects the frames a session replies with.
type replies struct {
	proto protocol.Protocol
	ch    chan []byte
}

func newReplies(p protocol.Protocol) *replies {
	return &replies{proto: p, ch: make(chan []byte, 1024)}
}

func (r *replies) fn(frame []byte) {
	r.ch <- bytes.Clone(frame)
}

func (r *replies) nextFrame(t *testing.T) []byte {
	t.Helper()
	select {
	case f := <-r.ch:
		return f
	case <-time.After(waitFor):
		t.Fatal("timed out waiting for a reply")
		return nil
	}
}

func (r *replies) next(t *testing.T) *protocol.Completion {
	t.Helper()
	return decodeCompletion(t, r.proto, r.nextFrame(t))
}

func decodeCompletion(t testing.TB, p protocol.Protocol, frame []byte) *protocol.Completion {
	t.Helper()
	d := protocol.NewDecoder(p, 1<<20)
	d.Write(frame)
	m, err := d.Next()
	if err != nil || m == nil {
		t.Fatalf("reply %q does not decode: %v", frame, err)
	}
	c, ok := m.(*protocol.Completion)
	if !ok {
		t.Fatalf("reply is %T, want *protocol.Completion", m)
	}
	return c
}

// logBuffer is a concurrency-safe slog destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, nil))
}

func strArg(t *testing.T, s string) protocol.Value {
	t.Helper()
	v, err := protocol.ValueOf(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// stallingFake is an upstream that holds every request until release is called (the
// test defers it, so that the Upstream's Close at cleanup does not wait for held calls)
// or the call is cancelled; each request it holds is announced on the returned channel.
func stallingFake(t *testing.T) (f *fake, held <-chan struct{}, release func()) {
	t.Helper()
	ch := make(chan struct{}, 64)
	done := make(chan struct{})
	var once sync.Once
	f = newFake(t, func(w http.ResponseWriter, r *http.Request) {
		ch <- struct{}{}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})
	return f, ch, func() { once.Do(func() { close(done) }) }
}

// waitHeld waits until the stalling fake holds one more request.
func waitHeld(t *testing.T, held <-chan struct{}) {
	t.Helper()
	select {
	case <-held:
	case <-time.After(waitFor):
		t.Fatal("no request reached the upstream")
	}
}
