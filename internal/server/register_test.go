package server

import (
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// A client whose start() resolved must be addressable at once: the connection joins the
// registry before its handshake response can reach the client, and a message sent in
// between queues behind that response rather than ahead of it.
func TestRegisteredBeforeHandshakeResponse(t *testing.T) {
	ts := startServer(t, nil)
	// Give the client time to read the response before the server goes on, so that a
	// registration made only after the response was queued is caught every time.
	ts.s.afterHandshakeQueued = func() { time.Sleep(20 * time.Millisecond) }
	for i := 0; i < 10; i++ {
		wc, n := ts.connectWS("chat", "", protocol.JSON())
		if _, ok := ts.s.Registry().Connection("chat", n.ConnectionID); !ok {
			t.Fatalf("round %d: the client saw the handshake response before the connection was registered", i)
		}
		broadcast(ts.s, "chat", "hello", "x")
		m := wc.next(5*time.Second, false)
		if target, arg := invocationText(t, m); target != "hello" || arg != "x" {
			t.Fatalf("round %d: got %s(%s), want hello(x)", i, target, arg)
		}
		wc.c.CloseNow()
	}
}
