package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// mintAnon returns a valid anonymous client token that differs from ts.token's: the
// claim makes it another token of "nobody".
func (ts *testServer) mintAnon(hubName, tag string) string {
	ts.t.Helper()
	tok, err := auth.NewToken(testKey, auth.TokenOptions{
		Audience: auth.ClientAudience(ts.url, hubName),
		Claims:   []auth.Claim{{Type: "tag", Value: tag}},
	})
	if err != nil {
		ts.t.Fatal(err)
	}
	return tok
}

// Regression (issue 7, found 1): under negotiate v0 the id= secret is the public
// connection id, and any other anonymous token of the hub could poll, send and delete
// the victim's connection.
func TestV0ConnectionBoundToItsToken(t *testing.T) {
	ts := startServer(t, nil)
	victimTok := ts.token("chat", "")
	resp := ts.do("POST", "/client/negotiate?hub=chat", victimTok, nil, nil) // v0: no connectionToken
	var n negotiated
	decodeJSON(t, resp, &n)
	if n.ConnectionToken != "" || n.ConnectionID == "" {
		t.Fatalf("v0 negotiate: %+v", n)
	}
	id := n.ConnectionID
	if r := ts.do("GET", "/client/?hub=chat&id="+id, victimTok, nil, nil); r.StatusCode != 200 {
		t.Fatalf("victim's first poll: %d", r.StatusCode)
	}
	hs := protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: "json", Version: 1})
	if r := ts.do("POST", "/client/?hub=chat&id="+id, victimTok, strings.NewReader(string(hs)), nil); r.StatusCode != 200 {
		t.Fatalf("victim's handshake: %d", r.StatusCode)
	}

	attacker := ts.mintAnon("chat", "attacker")
	for _, m := range []string{"GET", "POST", "DELETE"} {
		r := ts.do(m, "/client/?hub=chat&id="+id, attacker, strings.NewReader("{}\x1e"), nil)
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("%s with another anonymous token: %d %s, want 403", m, r.StatusCode, readBody(t, r))
		}
	}
	// The victim still owns it.
	if r := ts.do("GET", "/client/?hub=chat&id="+id, victimTok, nil, nil); r.StatusCode != 200 {
		t.Fatalf("victim's poll after the attempts: %d", r.StatusCode)
	}
}

// A token of the same non-empty user may use the connection (a refreshed token); a
// token of another user or an anonymous one may not.
func TestConnectionUsableBySameUser(t *testing.T) {
	ts := startServer(t, nil)
	n := ts.negotiate("chat", "ann")
	if r := ts.poll("chat", "ann", n.ConnectionToken); r.status != 200 {
		t.Fatalf("first poll %d", r.status)
	}
	refreshed, err := auth.NewToken(testKey, auth.TokenOptions{Audience: auth.ClientAudience(ts.url, "chat"), UserID: "ann",
		Claims: []auth.Claim{{Type: "refresh", Value: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: "json", Version: 1})
	if r := ts.do("POST", "/client/?hub=chat&id="+n.ConnectionToken, refreshed, strings.NewReader(string(hs)), nil); r.StatusCode != 200 {
		t.Fatalf("same user, other token: %d", r.StatusCode)
	}
	for _, tok := range []string{ts.token("chat", "bob"), ts.mintAnon("chat", "x")} {
		if r := ts.do("GET", "/client/?hub=chat&id="+n.ConnectionToken, tok, nil, nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("other principal: %d, want 403", r.StatusCode)
		}
	}
}

// Regression (issue 7, found 8): concurrent sends that all find a connection's queue
// full counted and logged it as a slow consumer more than once.
func TestSlowConsumerCountedOnce(t *testing.T) {
	cfg := fastConfig()
	cfg.SendQueueFrames = 1
	// A log line takes time in production (stderr); a slow writer widens the window in
	// which the other senders find the queue full but not yet sealed.
	lines := &countingWriter{delay: time.Millisecond}
	s, err := New(cfg, slog.New(slog.NewTextHandler(lines, nil)))
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 20
	for range rounds {
		c, _, _ := s.newConn("chat", &auth.Principal{}, "", "127.0.0.1", 1)
		c.handshaken.Store(true)
		c.proto = protocol.JSON()
		c.Send([]byte("fill\x1e"))
		var start, done sync.WaitGroup
		start.Add(1)
		for range 8 {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				c.Send([]byte("more\x1e"))
			}()
		}
		start.Done()
		done.Wait()
	}
	if got := s.Stats().SlowConsumers; got != rounds {
		t.Errorf("slow consumers counted %d times for %d connections", got, rounds)
	}
	if got := lines.count("closing slow consumer"); got != rounds {
		t.Errorf("slow consumers logged %d times for %d connections", got, rounds)
	}
	_ = s.Shutdown(context.Background())
}

// countingWriter is a log sink that is slow like a terminal and counts lines.
type countingWriter struct {
	delay time.Duration
	mu    sync.Mutex
	buf   strings.Builder
}

func (w *countingWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *countingWriter) count(sub string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.buf.String(), sub)
}

// A request presenting the connection's own token skips the signature check (key
// rotation) but never the expiry, and no other token takes that path.
func TestHeldByOwnTokenUntilExpiry(t *testing.T) {
	ts := startServer(t, nil)
	tok := ts.token("chat", "")
	p, err := ts.s.gateNow().ValidateClient(tok, "chat")
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := ts.s.newConn("chat", p, tok, "127.0.0.1", 1)
	now := time.Now()
	if !c.heldBy(tok, now) {
		t.Fatal("own token not recognised")
	}
	if c.heldBy(ts.mintAnon("chat", "other"), now) {
		t.Fatal("another token recognised")
	}
	if c.heldBy(tok, p.Expires.Add(auth.DefaultClockSkew)) {
		t.Fatal("an expired token recognised")
	}
	c.Close("", false)
}
