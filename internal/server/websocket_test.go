package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/signalbox-io/signalbox/protocol"
)

func TestWebSocketReceivesBroadcast(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.JSON(), protocol.MessagePack()} {
		t.Run(p.Name(), func(t *testing.T) {
			ts := startServer(t, nil)
			wc, _ := ts.connectWS("Chat", "alice", p)
			waitFor(t, 2*time.Second, "registration", func() bool { return ts.s.Registry().UserExists("chat", "alice") })
			broadcast(ts.s, "chat", "newMessage", "hello "+p.Name())
			target, arg := invocationText(t, wc.next(2*time.Second, false))
			if target != "newMessage" || arg != "hello "+p.Name() {
				t.Fatalf("got %s(%q)", target, arg)
			}
		})
	}
}

func TestWebSocketClientCloseNotifiesUpstreamCleanly(t *testing.T) {
	rec, upURL := newUpstream(t)
	ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
	wc, n := ts.connectWS("chat", "bob", protocol.JSON())
	rec.wait(t, 2*time.Second, func(e upstreamEvent) bool { return e.Event == "connected" && e.ConnectionID == n.ConnectionID })
	wc.send(&protocol.Close{})
	// Like the browser and Node clients: close without a status code.
	_ = wc.c.Close(websocket.StatusNoStatusRcvd, "")
	ev := rec.wait(t, 3*time.Second, func(e upstreamEvent) bool { return e.Event == "disconnected" && e.ConnectionID == n.ConnectionID })
	var body struct {
		Type  int    `json:"type"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(ev.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != 11 || body.Error != "" {
		t.Fatalf("disconnected body %s, want type 11 without error", ev.Body)
	}
	if strings.Contains(ev.Query, "access_token") || strings.Contains(ev.Query, n.ConnectionToken) {
		t.Fatalf("client query %q leaks a secret", ev.Query)
	}
	if !strings.HasPrefix(ev.Query, "?hub=chat") {
		t.Fatalf("client query %q", ev.Query)
	}
}
