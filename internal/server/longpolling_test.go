package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

type pollResult struct {
	status int
	body   []byte
	header http.Header
}

func (ts *testServer) poll(hubName, user, id string) pollResult {
	ts.t.Helper()
	resp := ts.do("GET", "/client/?hub="+hubName+"&id="+id+"&_=1", ts.token(hubName, user), nil, nil)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return pollResult{resp.StatusCode, b, resp.Header}
}

// pollAsync runs a poll in the background.
func (ts *testServer) pollAsync(hubName, user, id string) <-chan pollResult {
	ch := make(chan pollResult, 1)
	tok := ts.token(hubName, user)
	go func() {
		req, _ := http.NewRequest("GET", ts.url+"/client/?hub="+hubName+"&id="+id, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- pollResult{status: -1}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- pollResult{resp.StatusCode, b, resp.Header}
	}()
	return ch
}

func waitPoll(t *testing.T, ch <-chan pollResult) pollResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("poll did not return")
		return pollResult{}
	}
}

// startLongPolling negotiates, opens the transport and completes the handshake.
func (ts *testServer) startLongPolling(hubName, user string, p protocol.Protocol) (negotiated, *frameReader) {
	ts.t.Helper()
	n := ts.negotiate(hubName, user)
	first := ts.poll(hubName, user, n.ConnectionToken)
	if first.status != 200 || len(first.body) != 0 || first.header.Get("Content-Type") != "application/octet-stream" ||
		first.header.Get("Cache-Control") != "no-cache, no-store" || first.header.Get("Expires") == "" {
		ts.t.Fatalf("first poll %d %q %v", first.status, first.body, first.header)
	}
	if r := ts.post(hubName, user, n.ConnectionToken, protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: p.Name(), Version: 1})); r.StatusCode != 200 {
		ts.t.Fatalf("handshake POST %d", r.StatusCode)
	}
	fr := newFrameReader(p)
	r := ts.poll(hubName, user, n.ConnectionToken)
	if r.status != 200 {
		ts.t.Fatalf("handshake poll %d", r.status)
	}
	if errText, done := fr.feed(ts.t, r.body); errText != "" || !done {
		ts.t.Fatalf("handshake: %q", errText)
	}
	return n, fr
}

func TestLongPolling(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.JSON(), protocol.MessagePack()} {
		t.Run(p.Name(), func(t *testing.T) {
			ts := startServer(t, nil)
			n, fr := ts.startLongPolling("chat", "lee", p)
			waitFor(t, 2*time.Second, "registration", func() bool { return ts.s.Registry().UserExists("chat", "lee") })
			broadcast(ts.s, "chat", "a", "1")
			broadcast(ts.s, "chat", "b", "2")
			r := ts.poll("chat", "lee", n.ConnectionToken)
			if r.status != 200 {
				t.Fatalf("poll %d", r.status)
			}
			fr.feed(t, r.body)
			if len(fr.pending) != 2 {
				t.Fatalf("got %d messages in one poll, want both", len(fr.pending))
			}
			if target, arg := invocationText(t, fr.pending[1]); target != "b" || arg != "2" {
				t.Fatalf("%s(%q)", target, arg)
			}
			// A pending poll returns as soon as something is sent.
			ch := ts.pollAsync("chat", "lee", n.ConnectionToken)
			waitFor(t, 2*time.Second, "poll pending", func() bool { return ts.s.lookup(n.ConnectionToken).pollPending() })
			broadcast(ts.s, "chat", "c", "3")
			if r := waitPoll(t, ch); r.status != 200 || len(r.body) == 0 {
				t.Fatalf("pending poll %d %q", r.status, r.body)
			}
		})
	}
}

func TestLongPollingPollTimeoutReplaceAndDelete(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.PollTimeout = 50 * time.Millisecond })
	n, _ := ts.startLongPolling("chat", "", protocol.JSON())
	if r := ts.poll("chat", "", n.ConnectionToken); r.status != 200 || len(r.body) != 0 {
		t.Fatalf("timed-out poll: %d %q", r.status, r.body)
	}

	ts2 := startServer(t, nil)
	n2, _ := ts2.startLongPolling("chat", "", protocol.JSON())
	c := ts2.s.lookup(n2.ConnectionToken)
	pending := c.pollPending
	first := ts2.pollAsync("chat", "", n2.ConnectionToken)
	waitFor(t, 2*time.Second, "first poll pending", pending)
	second := ts2.pollAsync("chat", "", n2.ConnectionToken)
	if r := waitPoll(t, first); r.status != http.StatusNoContent {
		t.Fatalf("replaced poll: %d", r.status)
	}
	waitFor(t, 2*time.Second, "second poll pending", pending)
	resp := ts2.do("DELETE", "/client/?hub=chat&id="+n2.ConnectionToken, ts2.token("chat", ""), nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if r := waitPoll(t, second); r.status != http.StatusNoContent {
		t.Fatalf("poll after DELETE: %d", r.status)
	}
	waitFor(t, 2*time.Second, "removal", func() bool { return ts2.s.Stats().Connections == 0 })
	if r := ts2.post("chat", "", n2.ConnectionToken, []byte("{\"type\":6}\x1e")); r.StatusCode != 404 {
		t.Fatalf("POST after DELETE: %d", r.StatusCode)
	}
}

func TestSendLimits(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxMessageSize = 1024 })
	n, _ := ts.startLongPolling("chat", "", protocol.JSON())
	if r := ts.post("chat", "", n.ConnectionToken, []byte(strings.Repeat("x", 2000))); r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized POST: %d", r.StatusCode)
	}
	// A second POST while one is still reading its body is a conflict.
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan int, 1)
	tok := ts.token("chat", "")
	go func() {
		req, _ := http.NewRequest("POST", ts.url+"/client/?hub=chat&id="+n.ConnectionToken, pr)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte("{\"type\":6}")); err != nil {
		t.Fatal(err)
	}
	c := ts.s.lookup(n.ConnectionToken)
	waitFor(t, 2*time.Second, "the first POST to be reading", c.postBusy.Load)
	if r := ts.post("chat", "", n.ConnectionToken, []byte("{\"type\":6}\x1e")); r.StatusCode != http.StatusConflict {
		t.Fatalf("concurrent POST: %d", r.StatusCode)
	}
	pw.Write([]byte{0x1e})
	pw.Close()
	if s := <-done; s != 200 {
		t.Fatalf("first POST: %d", s)
	}
}

func TestSlowConsumerIsClosed(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.SendQueueFrames = 8 })
	n, _ := ts.startLongPolling("chat", "slow", protocol.JSON())
	fast, _ := ts.connectWS("chat", "fast", protocol.JSON())
	waitFor(t, 2*time.Second, "registration", func() bool {
		return ts.s.Registry().UserExists("chat", "slow") && ts.s.Registry().UserExists("chat", "fast")
	})
	// The long-polling client never polls; the WebSocket client reads everything.
	for i := 0; i < 20; i++ {
		broadcast(ts.s, "chat", "m", "x")
		if target, _ := invocationText(t, fast.next(2*time.Second, false)); target != "m" {
			t.Fatal(target)
		}
	}
	if got := ts.s.Stats().SlowConsumers; got != 1 {
		t.Fatalf("slow consumers %d, want 1", got)
	}
	if got := scrape(t, ts.s)["signalbox_slow_consumer_closes_total"]; got != 1 {
		t.Fatalf("signalbox_slow_consumer_closes_total %v, want 1", got)
	}
	// The slow one finds its queue, then a Close naming the reason.
	r := ts.poll("chat", "slow", n.ConnectionToken)
	fr := newFrameReader(protocol.JSON())
	fr.handshake = true
	fr.feed(t, r.body)
	last, ok := fr.pending[len(fr.pending)-1].(*protocol.Close)
	if !ok || last.Error != "slow consumer" {
		t.Fatalf("last message %+v", fr.pending[len(fr.pending)-1])
	}
	waitFor(t, 2*time.Second, "removal", func() bool { return !ts.s.Registry().UserExists("chat", "slow") })
}
