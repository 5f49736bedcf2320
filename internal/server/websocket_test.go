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

// The replies to the messages of one read leave in one write (one WebSocket message),
// not one write each: under overload most invocations are refused at once, and each
// write to a loopback client costs the server about as much as the refusal itself.
func TestWebSocketRepliesToOneReadInOneWrite(t *testing.T) {
	ts := startServer(t, nil) // no upstream: each invocation is answered at once
	wc, _ := ts.connectWS("chat", "carol", protocol.JSON())
	var in []byte
	for _, id := range []string{"1", "2", "3"} {
		b, err := protocol.JSON().AppendFrame(nil, &protocol.Invocation{InvocationID: id, Target: "echo"})
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, b...)
	}
	wc.sendRaw(in) // one WebSocket message: one Data call, so one read
	b, _, err := wc.readMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\x1e"); n != 3 {
		t.Fatalf("the first message written holds %d completions, want all 3: %q", n, b)
	}
	for _, id := range []string{`"invocationId":"1"`, `"invocationId":"2"`, `"invocationId":"3"`} {
		if !strings.Contains(string(b), id) {
			t.Fatalf("no completion with %s in %q", id, b)
		}
	}
}
