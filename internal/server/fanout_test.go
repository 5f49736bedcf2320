package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/restapi"
	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/protocol"
)

// gatedWS holds every write to a connection's socket until its gate opens, as a
// socket the kernel does not take bytes from would.
type gatedWS struct {
	wsConn
	entered chan struct{} // signalled when a write starts
	gate    chan struct{}
	once    sync.Once
}

func (g *gatedWS) wait() {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
}

func (g *gatedWS) TryWriteFramed(b []byte, binary bool) ([]byte, error) {
	g.wait()
	return g.wsConn.TryWriteFramed(b, binary)
}

// QueueWriteFramed writes at once, behind the gate: a gathered write would bypass it.
func (g *gatedWS) QueueWriteFramed(_ *transport.SendBatch, b []byte, binary bool, _ transport.WriteDoner) (bool, []byte, error) {
	rest, err := g.TryWriteFramed(b, binary)
	return false, rest, err
}

func (g *gatedWS) WriteFramed(b []byte, binary bool) error {
	g.wait()
	return g.wsConn.WriteFramed(b, binary)
}

func (g *gatedWS) open() { g.once.Do(func() { close(g.gate) }) }

// gateConn puts a gate in front of the socket of connection id; the gate opens at
// the latest when the test ends.
func gateConn(t *testing.T, ts *testServer, id string) *gatedWS {
	t.Helper()
	cl, ok := ts.s.Registry().Connection("chat", id)
	if !ok {
		t.Fatalf("no connection %s", id)
	}
	c := cl.(*conn)
	g := &gatedWS{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	c.mu.Lock()
	g.wsConn = c.ws
	c.ws = g
	c.mu.Unlock()
	t.Cleanup(g.open) // before the server's shutdown (cleanups run last first)
	return g
}

// restCallWithin is restCall failing the test when no answer comes within d.
func (ts *testServer) restCallWithin(d time.Duration, method, path, body string, onTimeout func()) (int, string) {
	ts.t.Helper()
	type answer struct {
		status int
		code   string
	}
	ch := make(chan answer, 1)
	go func() {
		st, code, _ := ts.restCall(method, path, body)
		ch <- answer{st, code}
	}()
	select {
	case a := <-ch:
		return a.status, a.code
	case <-time.After(d):
		onTimeout()
		ts.t.Fatalf("%s %s: no answer within %v", method, path, d)
		return 0, ""
	}
}

func nextText(t *testing.T, wc *wsClient) string {
	t.Helper()
	_, arg := invocationText(t, wc.next(5*time.Second, false))
	return arg
}

// A REST broadcast is answered once its frame is queued to every recipient, while
// the write to one of them is still blocked (docs/performance.md, S1); a second
// broadcast answered after it arrives after it at every recipient, the blocked one
// included.
func TestRESTBroadcastAnsweredBeforeWritesComplete(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxConcurrentBroadcasts = 4 })
	blocked, n := ts.connectWS("chat", "", protocol.JSON())
	other, _ := ts.connectWS("chat", "bob", protocol.JSON())
	g := gateConn(t, ts, n.ConnectionID)

	for _, body := range []string{`{"target":"m","arguments":["A"]}`, `{"target":"m","arguments":["B"]}`} {
		st, code := ts.restCallWithin(3*time.Second, "POST", "/api/hubs/chat/:send", body, g.open)
		if st != http.StatusAccepted {
			t.Fatalf("%s: %d %s", body, st, code)
		}
	}
	select {
	case <-g.entered: // the write to the blocked connection began and cannot end
	case <-time.After(5 * time.Second):
		t.Fatal("no write to the gated connection started")
	}
	g.open()
	for name, wc := range map[string]*wsClient{"blocked": blocked, "other": other} {
		if a, b := nextText(t, wc), nextText(t, wc); a != "A" || b != "B" {
			t.Fatalf("%s received %q then %q, want A then B", name, a, b)
		}
	}
}

// The background writes keep the fan-out's admission slot: with one slot, a
// broadcast or group send made while the first one's write is blocked is refused
// with 503 Error.Service.Overloaded, and admitted once the write is done.
func TestRESTBroadcastKeepsItsSlotUntilWritten(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.MaxConcurrentBroadcasts = 1
		c.BroadcastQueueWait = 50 * time.Millisecond
	})
	blocked, n := ts.connectWS("chat", "", protocol.JSON())
	g := gateConn(t, ts, n.ConnectionID)
	if st, code := ts.restCallWithin(3*time.Second, "POST", "/api/hubs/chat/:send", `{"target":"m","arguments":["A"]}`, g.open); st != http.StatusAccepted {
		t.Fatalf("first: %d %s", st, code)
	}
	<-g.entered
	for _, path := range []string{"/api/hubs/chat/:send", "/api/hubs/chat/groups/g/:send"} {
		st, code := ts.restCallWithin(3*time.Second, "POST", path, `{"target":"m","arguments":["refused"]}`, g.open)
		if st != http.StatusServiceUnavailable || code != restapi.CodeOverloaded {
			t.Fatalf("%s while the first write is blocked: %d %q, want 503 %s", path, st, code, restapi.CodeOverloaded)
		}
	}
	g.open()
	if err := ts.s.Registry().WaitFlushes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, code := ts.restCallWithin(3*time.Second, "POST", "/api/hubs/chat/:send", `{"target":"m","arguments":["C"]}`, g.open); st != http.StatusAccepted {
		t.Fatalf("after the write: %d %s", st, code)
	}
	if a, c := nextText(t, blocked), nextText(t, blocked); a != "A" || c != "C" {
		t.Fatalf("received %q then %q, want A then C", a, c)
	}
}

// Shutdown waits for a broadcast's background writes: what was acknowledged reaches
// the client before its Close message, and no fan-out goroutine outlives Shutdown.
func TestShutdownWaitsForBackgroundFanOut(t *testing.T) {
	ts := startServer(t, nil)
	wc, n := ts.connectWS("chat", "", protocol.JSON())
	g := gateConn(t, ts, n.ConnectionID)
	if st, code := ts.restCallWithin(3*time.Second, "POST", "/api/hubs/chat/:send", `{"target":"m","arguments":["A"]}`, g.open); st != http.StatusAccepted {
		t.Fatalf("%d %s", st, code)
	}
	<-g.entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- ts.s.Shutdown(ctx)
	}()
	g.open()
	if a := nextText(t, wc); a != "A" {
		t.Fatalf("received %q, want A", a)
	}
	if cm, err := wc.waitClosed(5 * time.Second); err != nil || cm == nil {
		t.Fatalf("close message %+v, error %v", cm, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.s.Registry().WaitFlushes(ctx); err != nil {
		t.Fatal("a background fan-out outlived Shutdown")
	}
}

// busyWS is a fakeWS whose TryWriteFramed finds another write in progress.
type busyWS struct{ fakeWS }

func (b *busyWS) TryWriteFramed([]byte, bool) ([]byte, error) { return nil, transport.ErrWriteBusy }
func (b *busyWS) QueueWriteFramed(*transport.SendBatch, []byte, bool, transport.WriteDoner) (bool, []byte, error) {
	return false, nil, transport.ErrWriteBusy
}

// A flush that finds another frame on the wire (TryWriteFramed says ErrWriteBusy)
// leaves the batch to the writer goroutine, which writes it whole; the fan-out does
// not wait.
func TestFlushLeavesABusySocketToTheWriter(t *testing.T) {
	s, err := New(fastConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := handshakenWebSocketConn(t, s)
	bw := &busyWS{}
	c.ws = bw
	c.Send([]byte("one\x1e"))
	c.Send([]byte("two\x1e"))
	c.Close("bye", false)
	select {
	case <-c.stopChan():
	case <-time.After(5 * time.Second):
		t.Fatal("writer did not end the connection")
	}
	s.wg.Wait()
	bw.mu.Lock()
	defer bw.mu.Unlock()
	all := strings.Join(bw.writes, "")
	if !strings.HasPrefix(all, "one\x1etwo\x1e") || !strings.Contains(all, "bye") {
		t.Fatalf("writes %q", bw.writes)
	}
}
