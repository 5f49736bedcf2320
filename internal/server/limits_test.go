package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// clientFrom returns an HTTP client whose connections come from the loopback address
// src (127.0.0.0/8 is all local on Linux), to play another client address.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func (ts *testServer) negotiateFrom(c *http.Client, tok string) *http.Response {
	ts.t.Helper()
	req, err := http.NewRequest("POST", ts.url+"/client/negotiate?hub=chat&negotiateVersion=1", nil)
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Regression (issue 7, found 7): one token made 20,000 negotiations in 2.2 s, each held
// for the negotiate timeout. The rate per address answers 429 (with Retry-After), and
// another address is still served.
func TestNegotiateRatePerAddress(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.NegotiateRate = 1; c.NegotiateBurst = 5 })
	tok := ts.token("chat", "")
	flood := clientFrom("127.0.0.1")
	ok, refused := 0, 0
	for range 50 {
		resp := ts.negotiateFrom(flood, tok)
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			refused++
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if ok > 6 || refused < 44 {
		t.Fatalf("%d accepted, %d refused; want at most the burst (5, +1 refill) accepted", ok, refused)
	}
	if resp := ts.negotiateFrom(clientFrom("127.0.0.2"), tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("another address: %d", resp.StatusCode)
	}
	if n := ts.s.Stats().Connections; n > 7 {
		t.Fatalf("%d connections held after the flood", n)
	}
}

// The pending negotiations (negotiated, no transport yet) are capped service-wide; a
// started connection no longer counts, and an expired one frees its place.
func TestMaxPendingNegotiations(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxPendingNegotiations = 3; c.NegotiateTimeout = 300 * time.Millisecond })
	tok := ts.token("chat", "")
	var first negotiated
	for i := range 3 {
		resp := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", tok, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("negotiate %d: %d", i, resp.StatusCode)
		}
		if i == 0 {
			decodeJSON(t, resp, &first)
		}
	}
	resp := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", tok, nil, nil)
	if body := readBody(t, resp); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "waiting for a transport") {
		t.Fatalf("4th pending: %d %q", resp.StatusCode, body)
	}
	// Starting one frees a place.
	if r := ts.poll("chat", "", first.ConnectionToken); r.status != 200 {
		t.Fatalf("start: %d", r.status)
	}
	if resp := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", tok, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("after a start: %d", resp.StatusCode)
	}
	// The others expire and free theirs.
	waitFor(t, 5*time.Second, "pending negotiations to expire", func() bool {
		resp := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", tok, nil, nil)
		return resp.StatusCode == 200
	})
}

// Connections per client address and per user are capped with 429 at negotiate; a
// connection that ends frees its place.
func TestConnectionsPerAddressAndUser(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxConnectionsPerAddress = 3; c.MaxConnectionsPerUser = 2 })
	ann := ts.token("chat", "ann")
	for range 2 {
		if r := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", ann, nil, nil); r.StatusCode != 200 {
			t.Fatalf("ann: %d", r.StatusCode)
		}
	}
	r := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", ann, nil, nil)
	if body := readBody(t, r); r.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "per user (2)") {
		t.Fatalf("ann's 3rd: %d %q", r.StatusCode, body)
	}
	if r := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", ts.token("chat", "bob"), nil, nil); r.StatusCode != 200 {
		t.Fatalf("bob: %d", r.StatusCode)
	}
	r = ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", ts.token("chat", "cy"), nil, nil)
	if body := readBody(t, r); r.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "per client address (3)") {
		t.Fatalf("4th from the address: %d %q", r.StatusCode, body)
	}
	if resp := ts.negotiateFrom(clientFrom("127.0.0.3"), ts.token("chat", "cy")); resp.StatusCode != 200 {
		t.Fatalf("another address: %d", resp.StatusCode)
	}
}

func TestClientAddrTrustedProxies(t *testing.T) {
	trusted, err := parsePrefixes([]string{"10.0.0.0/8", "192.168.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		peer, xff string
		trusted   []netip.Prefix
		want      string
	}{
		{"1.2.3.4:5", "9.9.9.9", nil, "1.2.3.4"},                            // no proxy trusted: header ignored
		{"1.2.3.4:5", "9.9.9.9", trusted, "1.2.3.4"},                        // peer not a proxy: header ignored
		{"10.1.1.1:5", "9.9.9.9", trusted, "9.9.9.9"},                       // one proxy
		{"10.1.1.1:5", "6.6.6.6, 9.9.9.9, 192.168.1.1", trusted, "9.9.9.9"}, // spoofed left part ignored
		{"10.1.1.1:5", "", trusted, "10.1.1.1"},
		{"[::ffff:10.1.1.1]:5", "9.9.9.9", trusted, "9.9.9.9"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := clientAddr(r, c.trusted); got != c.want {
			t.Errorf("peer %s xff %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if _, err := parsePrefixes([]string{"nope"}); err == nil {
		t.Error("bad entry accepted")
	}
}

// Arguments deeper than max-argument-depth are refused with a Completion error before
// they reach the upstream; the connection stays.
func TestClientArgumentDepth(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxArgumentDepth = 3 })
	for _, p := range []protocol.Protocol{protocol.JSON(), protocol.MessagePack()} {
		wc, _ := ts.connectWS("chat", "", p)
		deep := protocol.JSONValue([]byte(`[[[[1]]]]`))
		if p.Binary() {
			mp, err := deep.MessagePack()
			if err != nil {
				t.Fatal(err)
			}
			deep = protocol.MessagePackValue(mp)
		}
		wc.send(&protocol.Invocation{InvocationID: "1", Target: "x", Arguments: []protocol.Value{deep}})
		c, ok := wc.next(2*time.Second, false).(*protocol.Completion)
		if !ok || c.InvocationID != "1" || !strings.Contains(c.Error, "nests arrays and objects 4 deep; at most 3") {
			t.Fatalf("%s: %+v", p.Name(), c)
		}
		wc.send(&protocol.Invocation{InvocationID: "2", Target: "x", Arguments: []protocol.Value{protocol.JSONValue([]byte(`[[[1]]]`))}})
		if c, ok := wc.next(2*time.Second, false).(*protocol.Completion); !ok || c.InvocationID != "2" || !strings.Contains(c.Error, "No upstream") {
			t.Fatalf("%s: depth 3 should pass the check: %+v", p.Name(), c)
		}
	}
}

// A panic while handling one connection's message closes that connection (the client
// gets a Close with an error) and is logged; the process and the other connections go
// on. WebSocket input runs on the shared event loop, long polling on a POST handler:
// both are covered.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	var logs countingWriter
	cfg := fastConfig()
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.beforeHandle = func(m protocol.Message) {
		if inv, ok := m.(*protocol.Invocation); ok && inv.Target == "boom" {
			panic("boom from a test")
		}
	}
	ts := serveOn(t, s)
	bystander, _ := ts.connectWS("chat", "b", protocol.JSON())
	victim, _ := ts.connectWS("chat", "v", protocol.MessagePack())
	victim.send(&protocol.Invocation{Target: "boom"})
	cm, err := victim.waitClosed(5 * time.Second)
	if err != nil || cm == nil || !strings.Contains(cm.Error, "internal server error") {
		t.Fatalf("victim: close %+v, %v", cm, err)
	}
	lp, _ := ts.startLongPolling("chat", "l", protocol.JSON())
	boom, _ := protocol.JSON().AppendFrame(nil, &protocol.Invocation{Target: "boom"})
	if resp := ts.post("chat", "l", lp.ConnectionToken, boom); resp.StatusCode != 200 {
		t.Fatalf("long-polling POST: %d", resp.StatusCode)
	}
	waitFor(t, 5*time.Second, "both panics", func() bool { return s.Stats().Panics == 2 })
	broadcast(s, "chat", "still", "here")
	if target, _ := invocationText(t, bystander.next(2*time.Second, false)); target != "still" {
		t.Fatalf("bystander got %s", target)
	}
	if n := logs.count("panic while handling a connection"); n != 2 || logs.count("boom from a test") != 2 {
		t.Fatalf("%d panic log lines:\n%s", n, logs.buf.String())
	}
}

// FuzzClientAddr: whatever X-Forwarded-For says, the client address is the peer or
// one of the header's entries, and a header from an untrusted peer is ignored.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:5", "1.2.3.4, 10.0.0.2")
	f.Add("[::1]:1", ",,, ::ffff:10.0.0.3 ,x")
	f.Add("9.9.9.9:9", "10.0.0.1")
	trusted, _ := parsePrefixes([]string{"10.0.0.0/8", "::1"})
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		got := clientAddr(r, trusted)
		host, _, err := net.SplitHostPort(peer)
		if err != nil {
			host = peer
		}
		if got == host {
			return
		}
		if !inPrefixes(host, trusted) {
			t.Fatalf("untrusted peer %q: got %q from the header", peer, got)
		}
		found := false
		for _, part := range strings.Split(xff, ",") {
			if strings.TrimSpace(part) == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("%q is neither the peer nor in %q", got, xff)
		}
	})
}
