package server

import (
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// A send before any transport attached must not leave a connection in the registry
// that nothing will ever clean up.
func TestSendBeforeTransportLeavesNoGhost(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.NegotiateTimeout = 100 * time.Millisecond })
	n := ts.negotiate("chat", "ghost")
	hs := protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: "json", Version: 1})
	resp := ts.post("chat", "ghost", n.ConnectionToken, hs)
	resp.Body.Close()
	waitFor(t, 5*time.Second, "the negotiated connection to expire", func() bool { return ts.s.Stats().Connections == 0 })
	if _, ok := ts.s.Registry().Connection("chat", n.ConnectionID); ok {
		t.Fatalf("POST %d: connection %s stays in the registry after it expired", resp.StatusCode, n.ConnectionID)
	}
	if ts.s.Registry().UserExists("chat", "ghost") {
		t.Fatal("user of an expired connection still exists")
	}
}
