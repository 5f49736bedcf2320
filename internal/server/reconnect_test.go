package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

func decodeNegotiate(t *testing.T, resp *http.Response) negotiated {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %d", resp.StatusCode)
	}
	var n negotiated
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// connectStateful negotiates stateful reconnect and shakes hands with version 2, as
// the JavaScript client does with withStatefulReconnect() on WebSockets.
func (ts *testServer) connectStateful(hubName, user string, p protocol.Protocol) (*wsClient, negotiated) {
	ts.t.Helper()
	resp := ts.do("POST", "/client/negotiate?hub="+hubName+"&negotiateVersion=1&useStatefulReconnect=true", ts.token(hubName, user), nil, nil)
	n := decodeNegotiate(ts.t, resp)
	if n.UseStatefulReconnect == nil || !*n.UseStatefulReconnect {
		ts.t.Fatalf("negotiate did not grant stateful reconnect: %+v", n)
	}
	wc := ts.dialResume(hubName, n, user, p)
	wc.sendRaw(protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: p.Name(), Version: 2}))
	if errText := wc.handshake(); errText != "" {
		ts.t.Fatalf("handshake error: %s", errText)
	}
	return wc, n
}

// dialResume opens a WebSocket to the negotiated connection (no handshake: a
// reconnect does not repeat it).
func (ts *testServer) dialResume(hubName string, n negotiated, user string, p protocol.Protocol) *wsClient {
	ts.t.Helper()
	c, _, err := ts.dialWS(hubName, n.ConnectionToken, ts.token(hubName, user))
	if err != nil {
		ts.t.Fatal(err)
	}
	c.SetReadLimit(32 << 20)
	ts.t.Cleanup(func() { c.CloseNow() })
	wc := &wsClient{t: ts.t, c: c, proto: p, fr: newFrameReader(p)}
	return wc
}

// resumed is dialResume for a reconnect: the frame reader skips the handshake.
func (ts *testServer) resumed(hubName string, n negotiated, user string, p protocol.Protocol) *wsClient {
	wc := ts.dialResume(hubName, n, user, p)
	wc.fr.handshake = true
	return wc
}

func (ts *testServer) connByToken(t *testing.T, token string) *conn {
	t.Helper()
	c := ts.s.lookup(token)
	if c == nil {
		t.Fatal("the connection is gone")
	}
	return c
}

// cut drops the client's socket without a closing handshake and waits until the
// server holds the connection for a reconnect; it returns the connection.
func (ts *testServer) cut(t *testing.T, wc *wsClient, n negotiated) *conn {
	t.Helper()
	c := ts.connByToken(t, n.ConnectionToken)
	wc.c.CloseNow()
	waitFor(t, 5*time.Second, "the server to notice the loss", c.isDetached)
	return c
}

// nextNotAck returns the next message that is neither a Ping nor an Ack.
func (wc *wsClient) nextNotAck(timeout time.Duration) protocol.Message {
	wc.t.Helper()
	for {
		m := wc.next(timeout, false)
		if _, ok := m.(*protocol.Ack); !ok {
			return m
		}
	}
}

func wantText(t *testing.T, m protocol.Message, want string) {
	t.Helper()
	if _, arg := invocationText(t, m); arg != want {
		t.Fatalf("got %q, want %q", arg, want)
	}
}

func countInvocations(rec *upstreamRecorder, id, arg string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, e := range rec.events {
		if e.ConnectionID == id && e.Event == "echo" && strings.Contains(string(e.Body), arg) {
			n++
		}
	}
	return n
}

func TestStatefulReconnectResumesWithReplay(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.JSON(), protocol.MessagePack()} {
		t.Run(p.Name(), func(t *testing.T) {
			rec, upURL := newUpstream(t)
			ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
			wc, n := ts.connectStateful("chat", "alice", p)
			rec.wait(t, 5*time.Second, func(e upstreamEvent) bool { return e.Event == "connected" && e.ConnectionID == n.ConnectionID })

			broadcast(ts.s, "chat", "msg", "m1")
			broadcast(ts.s, "chat", "msg", "m2")
			wantText(t, wc.nextNotAck(5*time.Second), "m1")
			wantText(t, wc.nextNotAck(5*time.Second), "m2")
			wc.send(&protocol.Ack{SequenceID: 1}) // m2 stays unacknowledged
			wc.send(&protocol.Invocation{Target: "echo", Arguments: []protocol.Value{protocol.JSONValue([]byte(`"first"`))}})
			rec.wait(t, 5*time.Second, func(e upstreamEvent) bool { return e.Event == "echo" && strings.Contains(string(e.Body), "first") })

			c := ts.cut(t, wc, n)                // the transport breaks without a closing handshake
			broadcast(ts.s, "chat", "msg", "m3") // REST sends while away are buffered
			broadcast(ts.s, "chat", "msg", "m4")

			wc2 := ts.resumed("chat", n, "alice", p)
			// The client's side of the exchange: Sequence, then what it has not seen
			// acknowledged (the first invocation again: a duplicate), then a new one.
			wc2.send(&protocol.Sequence{SequenceID: 1})
			wc2.send(&protocol.Invocation{Target: "echo", Arguments: []protocol.Value{protocol.JSONValue([]byte(`"first"`))}})
			wc2.send(&protocol.Invocation{Target: "echo", Arguments: []protocol.Value{protocol.JSONValue([]byte(`"second"`))}})

			seq, ok := wc2.next(5*time.Second, false).(*protocol.Sequence)
			if !ok || seq.SequenceID != 2 {
				t.Fatalf("first message after the reconnect: %#v, want Sequence 2", seq)
			}
			for _, want := range []string{"m2", "m3", "m4"} {
				wantText(t, wc2.nextNotAck(5*time.Second), want)
			}
			broadcast(ts.s, "chat", "msg", "m5")
			wantText(t, wc2.nextNotAck(5*time.Second), "m5")

			rec.wait(t, 5*time.Second, func(e upstreamEvent) bool { return e.Event == "echo" && strings.Contains(string(e.Body), "second") })
			if got := countInvocations(rec, n.ConnectionID, "first"); got != 1 {
				t.Fatalf("the resent invocation reached the upstream %d times, want once", got)
			}
			// The server acknowledges both client messages within its ack delay.
			deadline := time.Now().Add(5 * time.Second)
			for {
				if a, ok := wc2.next(time.Until(deadline), false).(*protocol.Ack); ok && a.SequenceID == 2 {
					break
				}
			}
			rec.mu.Lock()
			for _, e := range rec.events {
				if e.Event == "disconnected" {
					t.Errorf("upstream heard disconnected during a resumed connection: %s", e.Body)
				}
			}
			rec.mu.Unlock()
			if got := ts.connByToken(t, n.ConnectionToken); got != c {
				t.Fatal("the connection was replaced")
			}
		})
	}
}

func TestStatefulReconnectRefusals(t *testing.T) {
	rec, upURL := newUpstream(t)
	ts := startServer(t, func(c *Config) {
		c.Upstream = StringList{upURL}
		c.ReconnectWindow = 300 * time.Millisecond
	})
	wc, n := ts.connectStateful("chat", "alice", protocol.JSON())
	c := ts.cut(t, wc, n)

	// Another user with the connection token: refused, and the connection waits on.
	_, resp, err := ts.dialWS("chat", n.ConnectionToken, ts.token("chat", "mallory"))
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("reconnect by another user: %v %v", resp, err)
	}
	if !c.isDetached() {
		t.Fatal("a refused reconnect ended the wait")
	}

	// The window ends: only now does the upstream hear disconnected, with the reason.
	start := time.Now()
	ev := rec.wait(t, 5*time.Second, func(e upstreamEvent) bool { return e.Event == "disconnected" && e.ConnectionID == n.ConnectionID })
	if !strings.Contains(string(ev.Body), "did not reconnect within") {
		t.Fatalf("disconnected body %s", ev.Body)
	}
	t.Logf("disconnected %v after the refused attempt", time.Since(start))
	_, resp, err = ts.dialWS("chat", n.ConnectionToken, ts.token("chat", "alice"))
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("reconnect after the window: %v %v", resp, err)
	}
}

func TestStatefulReconnectNeedsVersion2(t *testing.T) {
	rec, upURL := newUpstream(t)
	ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
	resp := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1&useStatefulReconnect=true", ts.token("chat", "bob"), nil, nil)
	n := decodeNegotiate(t, resp)
	wc := ts.dialResume("chat", n, "bob", protocol.JSON())
	wc.sendRaw(protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: "json", Version: 1}))
	if errText := wc.handshake(); errText != "" {
		t.Fatal(errText)
	}
	wc.c.CloseNow()
	// Version 1: no stateful reconnect, the loss ends the connection at once.
	rec.wait(t, 5*time.Second, func(e upstreamEvent) bool { return e.Event == "disconnected" && e.ConnectionID == n.ConnectionID })
}

func TestStatefulReconnectBackPressure(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.ReconnectBufferBytes = 120
		c.SendQueueFrames = 20
	})
	wc, n := ts.connectStateful("chat", "carol", protocol.JSON())
	big := strings.Repeat("x", 50)
	for i := 0; i < 6; i++ {
		broadcast(ts.s, "chat", "msg", big+string(rune('a'+i)))
	}
	// About 80 bytes per frame: with 120 unacknowledged bytes allowed, the first
	// frame goes alone and the rest wait for the Ack.
	wantText(t, wc.nextNotAck(5*time.Second), big+"a")
	c := ts.connByToken(t, n.ConnectionToken)
	sr := c.sr.Load()
	sr.mu.Lock()
	sent, buffered := sr.out.sent, len(sr.out.entries)
	sr.mu.Unlock()
	if sent != 1 || buffered != 6 {
		t.Fatalf("%d of %d buffered messages sent before an Ack, want 1", sent, buffered)
	}
	for i := 1; i < 6; i++ {
		wc.send(&protocol.Ack{SequenceID: int64(i)})
		wantText(t, wc.nextNotAck(5*time.Second), big+string(rune('a'+i)))
	}

	// Nothing acknowledged any more: past send-queue-frames waiting messages the
	// connection is closed with a reason, never silently dropped.
	for i := 0; i < 30; i++ {
		broadcast(ts.s, "chat", "msg", big)
	}
	cm, err := wc.waitClosed(5 * time.Second)
	if err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
	// A Close message names the reason, unless the writer was in the middle of a
	// write (then the socket is dropped at once); the connection records it either way.
	if cm != nil && !strings.Contains(cm.Error, "did not acknowledge") {
		t.Fatalf("close message %#v", cm)
	}
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	if !strings.Contains(reason, "did not acknowledge") {
		t.Fatalf("recorded reason %q", reason)
	}
	if got := ts.s.Stats().SlowConsumers; got != 1 {
		t.Fatalf("slow consumers %d, want 1", got)
	}
}

// A reconnect that arrives while the server still holds the old socket (a half-open
// connection) replaces it.
func TestStatefulReconnectReplacesHalfOpenSocket(t *testing.T) {
	rec, upURL := newUpstream(t)
	ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
	p := protocol.MessagePack()
	wc, n := ts.connectStateful("chat", "dan", p)
	broadcast(ts.s, "chat", "msg", "m1")
	wantText(t, wc.nextNotAck(5*time.Second), "m1")

	wc2 := ts.resumed("chat", n, "dan", p) // the old socket is still open
	wc2.send(&protocol.Sequence{SequenceID: 1})
	if seq, ok := wc2.next(5*time.Second, false).(*protocol.Sequence); !ok || seq.SequenceID != 1 {
		t.Fatalf("first message on the new socket: %#v, want Sequence 1", seq)
	}
	wantText(t, wc2.nextNotAck(5*time.Second), "m1") // never acknowledged: replayed
	broadcast(ts.s, "chat", "msg", "m2")
	wantText(t, wc2.nextNotAck(5*time.Second), "m2")
	// The replaced socket is closed by the server.
	if _, err := wc.waitClosed(5 * time.Second); err != nil {
		t.Fatalf("the replaced socket stayed open: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		if e.Event == "disconnected" {
			t.Fatalf("upstream heard disconnected: %s", e.Body)
		}
	}
}

// A drain does not wait for a connection whose transport is lost: it ends at once.
func TestStatefulReconnectDrainEndsDetached(t *testing.T) {
	rec, upURL := newUpstream(t)
	ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
	wc, n := ts.connectStateful("chat", "erin", protocol.JSON())
	c := ts.cut(t, wc, n)
	c.Close("Server is shutting down.", true)
	rec.wait(t, 5*time.Second, func(e upstreamEvent) bool { return e.Event == "disconnected" && e.ConnectionID == n.ConnectionID })
	waitFor(t, 5*time.Second, "the token to be forgotten", func() bool { return ts.s.lookup(n.ConnectionToken) == nil })
}

// A Sequence beyond what the server received means lost messages: the connection is
// closed with the reason rather than carrying on with a gap.
func TestStatefulReconnectSequenceAheadCloses(t *testing.T) {
	rec, upURL := newUpstream(t)
	ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
	wc, n := ts.connectStateful("chat", "finn", protocol.JSON())
	ts.cut(t, wc, n)
	wc2 := ts.resumed("chat", n, "finn", protocol.JSON())
	wc2.send(&protocol.Sequence{SequenceID: 99})
	ev := rec.wait(t, 5*time.Second, func(e upstreamEvent) bool { return e.Event == "disconnected" && e.ConnectionID == n.ConnectionID })
	if !strings.Contains(string(ev.Body), "Sequence 99") {
		t.Fatalf("disconnected body %s", ev.Body)
	}
}
