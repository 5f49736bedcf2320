package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/signalbox-io/signalbox/protocol"
)

// rawWS opens a negotiated WebSocket without a handshake.
func (ts *testServer) rawWS(hubName string, p protocol.Protocol) *wsClient {
	ts.t.Helper()
	n := ts.negotiate(hubName, "")
	c, _, err := ts.dialWS(hubName, n.ConnectionToken, ts.token(hubName, ""))
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: ts.t, c: c, proto: p, fr: newFrameReader(p)}
}

func TestHandshakeErrors(t *testing.T) {
	ts := startServer(t, nil)
	cases := []struct {
		name, request, want string
	}{
		{"unknown protocol", `{"protocol":"xml","version":1}`, "'xml' is not supported"},
		{"unsupported version", `{"protocol":"json","version":99}`, "version 99"},
		{"malformed", `{"protocol":`, "invalid"},
		{"not an object", `[]`, "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wc := ts.rawWS("chat", protocol.JSON())
			wc.sendRaw(append([]byte(c.request), 0x1e))
			b, _, err := wc.readMsg(2 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			errText, _, err := protocol.ParseHandshakeResponse(b)
			if err != nil || !strings.Contains(errText, c.want) {
				t.Fatalf("response %q (%v), want error containing %q", b, err, c.want)
			}
			if _, _, err := wc.readMsg(2 * time.Second); err == nil {
				t.Fatal("socket still open after a failed handshake")
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		wc := ts.rawWS("chat", protocol.JSON())
		wc.sendRaw([]byte(`{"protocol":"json","version":1,"x":"` + strings.Repeat("a", 5000)))
		b, _, err := wc.readMsg(2 * time.Second)
		if err != nil || !strings.Contains(string(b), "too large") {
			t.Fatalf("%q %v", b, err)
		}
		if _, _, err := wc.readMsg(2 * time.Second); err == nil {
			t.Fatal("socket still open after a failed handshake")
		}
	})
	waitFor(t, 2*time.Second, "all connections gone", func() bool { return ts.s.Stats().Connections == 0 })
}

func TestHandshakeTimeout(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.HandshakeTimeout = 50 * time.Millisecond })
	wc := ts.rawWS("chat", protocol.JSON())
	start := time.Now()
	if _, _, err := wc.readMsg(2 * time.Second); err == nil {
		t.Fatal("got a message instead of a close")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("closed after %v", d)
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxMessageSize = 1024 })
	bystander, _ := ts.connectWS("chat", "by", protocol.JSON())
	cases := []struct {
		name  string
		proto protocol.Protocol
		input []byte
		want  string
	}{
		{"garbage json", protocol.JSON(), []byte("{not json}\x1e"), "invalid message"},
		{"oversized json", protocol.JSON(), []byte(`{"type":1,"target":"x","arguments":["` + strings.Repeat("a", 2000) + "\"]}\x1e"), "maximum message size"},
		{"garbage messagepack", protocol.MessagePack(), []byte{0x03, 0xc1, 0xc1, 0xc1}, "invalid message"},
		{"oversized messagepack length", protocol.MessagePack(), []byte{0xff, 0xff, 0xff, 0xff, 0x07}, "maximum message size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wc, _ := ts.connectWS("chat", "bad", c.proto)
			wc.sendRaw(c.input)
			cm, err := wc.waitClosed(2 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if cm == nil || !strings.Contains(cm.Error, c.want) || cm.AllowReconnect {
				t.Fatalf("close message %+v, want error containing %q", cm, c.want)
			}
		})
	}
	waitFor(t, 2*time.Second, "bad connections gone", func() bool { return !ts.s.Registry().UserExists("chat", "bad") })
	broadcast(ts.s, "chat", "still", "here")
	if target, _ := invocationText(t, bystander.next(2*time.Second, false)); target != "still" {
		t.Fatal(target)
	}
}

func TestKeepAliveAndClientTimeout(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.KeepAliveInterval = 20 * time.Millisecond
		c.ClientTimeout = 300 * time.Millisecond
	})
	t.Run("pings when idle, stays open while the client pings", func(t *testing.T) {
		wc, _ := ts.connectWS("chat", "", protocol.JSON())
		start := time.Now()
		pings := 0
		for time.Since(start) < 600*time.Millisecond {
			if _, ok := wc.next(time.Second, true).(*protocol.Ping); !ok {
				t.Fatal("expected only pings")
			}
			pings++
			wc.send(&protocol.Ping{})
		}
		if pings < 10 {
			t.Fatalf("%d pings in 600ms with a 20ms interval", pings)
		}
	})
	t.Run("closed after the client timeout", func(t *testing.T) {
		wc, _ := ts.connectWS("chat", "", protocol.JSON())
		start := time.Now()
		cm, err := wc.waitClosed(3 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
			t.Fatalf("closed after %v, want about 300ms", d)
		}
		if cm == nil || !strings.Contains(cm.Error, "timeout") {
			t.Fatalf("close %+v", cm)
		}
	})
	t.Run("long polling: a pending poll counts as activity", func(t *testing.T) {
		// Its own server: the 20 ms pings above end every poll at once, so a poll was never
		// pending for long, and the test only held while the client came back within 300 ms
		// each time, which a loaded machine does not promise. Here one poll stays pending
		// for longer than the client timeout; the timeout is long enough for the client's
		// own steps between polls even under load.
		const clientTimeout = time.Second
		ts := startServer(t, func(c *Config) {
			c.KeepAliveInterval = time.Hour
			c.ClientTimeout = clientTimeout
			c.PollTimeout = time.Hour
		})
		n, _ := ts.startLongPolling("chat", "", protocol.JSON())
		c := ts.s.lookup(n.ConnectionToken)
		if c == nil {
			t.Fatal("no connection after the handshake")
		}
		ch := ts.pollAsync("chat", "", n.ConnectionToken)
		waitFor(t, 2*time.Second, "poll pending", c.pollPending)
		// The lifecycle timer wakes at the latest one client timeout after the poll began;
		// half a timeout more is the margin for it to run.
		held := time.NewTimer(clientTimeout + clientTimeout/2)
		defer held.Stop()
		select {
		case r := <-ch:
			t.Fatalf("the pending poll ended with %d %q: the connection timed out", r.status, r.body)
		case <-held.C:
		}
		if ts.s.lookup(n.ConnectionToken) == nil || !c.pollPending() {
			t.Fatal("a connection with a pending poll timed out")
		}
		broadcast(ts.s, "chat", "after", "")
		if r := waitPoll(t, ch); r.status != 200 || !strings.Contains(string(r.body), "after") {
			t.Fatalf("poll %d %q", r.status, r.body)
		}
		// Without a pending poll the client timeout still applies.
		waitFor(t, 5*clientTimeout, "the idle connection's timeout", func() bool { return ts.s.lookup(n.ConnectionToken) == nil })
	})
}

func TestInvocationsWithoutUpstream(t *testing.T) {
	ts := startServer(t, nil)
	wc, _ := ts.connectWS("chat", "", protocol.JSON())
	wc.send(&protocol.Invocation{Target: "fireAndForget"}) // no answer expected
	wc.send(&protocol.Invocation{InvocationID: "1", Target: "echo"})
	cm, ok := wc.next(2*time.Second, false).(*protocol.Completion)
	if !ok || cm.InvocationID != "1" || !strings.Contains(cm.Error, "No upstream") {
		t.Fatalf("%+v", cm)
	}
	wc.send(&protocol.StreamInvocation{InvocationID: "2", Target: "counter"})
	cm, ok = wc.next(2*time.Second, false).(*protocol.Completion)
	if !ok || cm.InvocationID != "2" || !strings.Contains(cm.Error, "Stream invocations need an upstream") {
		t.Fatalf("%+v", cm)
	}
	// Messages without meaning in serverless mode are ignored.
	wc.send(&protocol.CancelInvocation{InvocationID: "2"})
	wc.send(&protocol.Completion{InvocationID: "9"})
	wc.send(&protocol.Ping{})
	broadcast(ts.s, "chat", "after", "")
	if target, _ := invocationText(t, wc.next(2*time.Second, false)); target != "after" {
		t.Fatal(target)
	}
}

func TestInvocationThroughUpstream(t *testing.T) {
	rec, upURL := newUpstream(t)
	rec.reply = func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Header.Get("X-ASRS-Category") != "messages" {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{\"type\":3,\"invocationId\":\"7\",\"result\":\"pong\"}\x1e"))
	}
	ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
	wc, n := ts.connectWS("chat", "ivy", protocol.JSON())
	v, _ := protocol.ValueOf("ping")
	wc.send(&protocol.Invocation{InvocationID: "7", Target: "echo", Arguments: []protocol.Value{v}})
	cm, ok := wc.next(3*time.Second, false).(*protocol.Completion)
	if !ok || cm.InvocationID != "7" || cm.Error != "" {
		t.Fatalf("%+v", cm)
	}
	var got string
	if err := cm.Result.Decode(&got); err != nil || got != "pong" {
		t.Fatalf("result %q %v", got, err)
	}
	ev := rec.wait(t, time.Second, func(e upstreamEvent) bool { return e.Event == "echo" })
	if ev.ConnectionID != n.ConnectionID || ev.UserID != "ivy" || !strings.HasPrefix(string(ev.Body), `{"type":1`) {
		t.Fatalf("%+v", ev)
	}
}

func TestWebSocketWithoutNegotiate(t *testing.T) {
	ts := startServer(t, nil)
	c, _, err := ts.dialWS("chat", "", ts.token("chat", "zed"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	wc := &wsClient{t: t, c: c, proto: protocol.JSON(), fr: newFrameReader(protocol.JSON())}
	wc.sendRaw([]byte("{\"protocol\":\"json\",\"version\":1}\x1e"))
	if errText := wc.handshake(); errText != "" {
		t.Fatal(errText)
	}
	waitFor(t, 2*time.Second, "registration", func() bool { return ts.s.Registry().UserExists("chat", "zed") })
	if _, _, err := ts.dialWS("chat", "", ""); err == nil {
		t.Fatal("a WebSocket without token was accepted")
	}
}

func TestGracefulDrain(t *testing.T) {
	ts := startServer(t, nil)
	ws, _ := ts.connectWS("chat", "", protocol.JSON())
	n, _ := ts.startLongPolling("chat", "", protocol.JSON())
	pending := ts.pollAsync("chat", "", n.ConnectionToken)
	waitFor(t, 2*time.Second, "poll pending", func() bool {
		return ts.s.lookup(n.ConnectionToken).pollPending()
	})
	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdownDone <- ts.s.Shutdown(ctx)
	}()
	cm, err := ws.waitClosed(3 * time.Second)
	if err != nil || cm == nil || !cm.AllowReconnect {
		t.Fatalf("WebSocket close %+v %v", cm, err)
	}
	if cs := websocket.CloseStatus(err); cs != -1 && cs != websocket.StatusNormalClosure {
		t.Fatalf("close status %v", cs)
	}
	r := waitPoll(t, pending)
	fr := newFrameReader(protocol.JSON())
	fr.handshake = true
	fr.feed(t, r.body)
	if len(fr.pending) != 1 {
		t.Fatalf("poll during drain: %d %q", r.status, r.body)
	}
	if c, ok := fr.pending[0].(*protocol.Close); !ok || !c.AllowReconnect {
		t.Fatalf("poll during drain: %+v", fr.pending[0])
	}
	select {
	case err := <-shutdownDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if ts.s.Stats().Connections != 0 {
		t.Fatal("connections left after drain")
	}
}

func TestStalledReaderIsClosed(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.WriteTimeout = 100 * time.Millisecond
		c.SendQueueBytes = 1 << 30 // so that the write timeout, not the queue, ends it
		c.SendQueueFrames = 1 << 20
	})
	stalled := rawWSDial(ts, ts.token("chat", "stalled")) // never reads again
	defer stalled.Close()
	waitFor(t, 2*time.Second, "registration", func() bool { return ts.s.Registry().UserExists("chat", "stalled") })
	big := strings.Repeat("x", 256<<10)
	deadline := time.Now().Add(2 * time.Second)
	for ts.s.Registry().UserExists("chat", "stalled") {
		if time.Now().After(deadline) {
			t.Fatal("a client that stopped reading was not closed")
		}
		broadcast(ts.s, "chat", "big", big)
		time.Sleep(10 * time.Millisecond)
	}
}
