package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/protocol"
)

const testKey = "test-access-key-0123456789abcdefghijklmnopqrstuv"

// testServer is a server on a real loopback listener.
type testServer struct {
	t   *testing.T
	s   *Server
	url string

	tokMu  sync.Mutex
	tokens map[string]string // see token
}

func fastConfig() Config {
	cfg := Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.AccessKeys = StringList{testKey}
	// Every test connects from 127.0.0.1, many at once: the per-address limits have
	// their own tests (limits_test.go).
	cfg.NegotiateRate = 0
	cfg.MaxConnectionsPerAddress = 0
	return cfg
}

func startServer(t *testing.T, mutate func(*Config)) *testServer {
	t.Helper()
	return startServerTB(t, t, mutate)
}

// startServerB starts a default server for a benchmark.
func startServerB(b *testing.B) *testServer { return startServerTB(b, &testing.T{}, nil) }

func (ts *testServer) tokenB(b *testing.B) string {
	tok, err := auth.NewToken(testKey, auth.TokenOptions{Audience: auth.ClientAudience(ts.url, "chat")})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func startServerTB(tb testing.TB, t *testing.T, mutate func(*Config)) *testServer {
	tb.Helper()
	cfg := fastConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return serveOnTB(tb, t, s)
}

// serveOn serves s on a loopback port until the test ends.
func serveOn(t *testing.T, s *Server) *testServer { return serveOnTB(t, t, s) }

func serveOnTB(tb testing.TB, t *testing.T, s *Server) *testServer {
	tb.Helper()
	s.lpCloseGrace = 50 * time.Millisecond
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	ts := &testServer{t: t, s: s, url: "http://" + ln.Addr().String()}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// token returns one client token per hub and user for the server's life: an anonymous
// connection is usable only with the very token that negotiated it, and tokens minted
// in different seconds differ.
func (ts *testServer) token(hubName, user string) string {
	ts.t.Helper()
	ts.tokMu.Lock()
	defer ts.tokMu.Unlock()
	key := hubName + "\x00" + user
	if tok, ok := ts.tokens[key]; ok {
		return tok
	}
	tok, err := auth.NewToken(testKey, auth.TokenOptions{Audience: auth.ClientAudience(ts.url, hubName), UserID: user})
	if err != nil {
		ts.t.Fatal(err)
	}
	if ts.tokens == nil {
		ts.tokens = make(map[string]string)
	}
	ts.tokens[key] = tok
	return tok
}

func (ts *testServer) do(method, path, tok string, body io.Reader, hdr map[string]string) *http.Response {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url+path, body)
	if err != nil {
		ts.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type negotiated struct {
	NegotiateVersion     int    `json:"negotiateVersion"`
	ConnectionID         string `json:"connectionId"`
	ConnectionToken      string `json:"connectionToken"`
	UseStatefulReconnect *bool  `json:"useStatefulReconnect"`
	Error                string `json:"error"`
	AvailableTransports  []struct {
		Transport       string   `json:"transport"`
		TransferFormats []string `json:"transferFormats"`
	} `json:"availableTransports"`
}

func (ts *testServer) negotiate(hubName, user string) negotiated {
	ts.t.Helper()
	resp := ts.do("POST", "/client/negotiate?hub="+hubName+"&negotiateVersion=1", ts.token(hubName, user), nil, nil)
	if resp.StatusCode != 200 {
		ts.t.Fatalf("negotiate: %d %s", resp.StatusCode, readBody(ts.t, resp))
	}
	var n negotiated
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
		ts.t.Fatal(err)
	}
	return n
}

// frameReader decodes hub messages from bytes received by a test client.
type frameReader struct {
	dec       *protocol.Decoder
	handshake bool
	pending   []protocol.Message
}

func newFrameReader(p protocol.Protocol) *frameReader {
	return &frameReader{dec: protocol.NewDecoder(p, 16<<20)}
}

// feed consumes bytes; it returns the handshake error text if the handshake failed.
func (fr *frameReader) feed(t *testing.T, b []byte) (hsErr string, hsDone bool) {
	t.Helper()
	if !fr.handshake {
		errText, rest, err := protocol.ParseHandshakeResponse(b)
		if err != nil {
			t.Fatalf("handshake response %q: %v", b, err)
		}
		fr.handshake = true
		if errText != "" {
			return errText, true
		}
		b = rest
		hsDone = true
	}
	fr.dec.Write(b)
	for {
		m, err := fr.dec.Next()
		if err != nil {
			t.Fatalf("decoding %q: %v", b, err)
		}
		if m == nil {
			return "", hsDone
		}
		fr.pending = append(fr.pending, m)
	}
}

// wsClient is a raw WebSocket hub client.
type wsClient struct {
	t     *testing.T
	c     *websocket.Conn
	proto protocol.Protocol
	fr    *frameReader
}

func (ts *testServer) dialWS(hubName, id, tok string) (*websocket.Conn, *http.Response, error) {
	u := strings.Replace(ts.url, "http://", "ws://", 1) + "/client/?hub=" + hubName
	if id != "" {
		u += "&id=" + url.QueryEscape(id)
	}
	if tok != "" {
		u += "&access_token=" + url.QueryEscape(tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, u, nil)
}

// connectWS negotiates (unless skip) and opens a WebSocket with a completed handshake.
func (ts *testServer) connectWS(hubName, user string, p protocol.Protocol) (*wsClient, negotiated) {
	ts.t.Helper()
	n := ts.negotiate(hubName, user)
	c, _, err := ts.dialWS(hubName, n.ConnectionToken, ts.token(hubName, user))
	if err != nil {
		ts.t.Fatal(err)
	}
	c.SetReadLimit(32 << 20)
	wc := &wsClient{t: ts.t, c: c, proto: p, fr: newFrameReader(p)}
	ts.t.Cleanup(func() { c.CloseNow() })
	wc.sendRaw(protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: p.Name(), Version: 1}))
	if errText := wc.handshake(); errText != "" {
		ts.t.Fatalf("handshake error: %s", errText)
	}
	return wc, n
}

func (wc *wsClient) sendRaw(b []byte) {
	wc.t.Helper()
	typ := websocket.MessageText
	if wc.proto != nil && wc.proto.Binary() {
		typ = websocket.MessageBinary
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := wc.c.Write(ctx, typ, b); err != nil {
		wc.t.Fatal(err)
	}
}

func (wc *wsClient) send(m protocol.Message) {
	wc.t.Helper()
	b, err := wc.proto.AppendFrame(nil, m)
	if err != nil {
		wc.t.Fatal(err)
	}
	wc.sendRaw(b)
}

func (wc *wsClient) readMsg(timeout time.Duration) ([]byte, websocket.MessageType, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, b, err := wc.c.Read(ctx)
	return b, typ, err
}

func (wc *wsClient) handshake() string {
	wc.t.Helper()
	for !wc.fr.handshake {
		b, _, err := wc.readMsg(5 * time.Second)
		if err != nil {
			wc.t.Fatalf("reading handshake: %v", err)
		}
		if errText, _ := wc.fr.feed(wc.t, b); errText != "" {
			return errText
		}
	}
	return ""
}

// next returns the next hub message that is not a Ping (unless wantPing).
func (wc *wsClient) next(timeout time.Duration, wantPing bool) protocol.Message {
	wc.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for len(wc.fr.pending) > 0 {
			m := wc.fr.pending[0]
			wc.fr.pending = wc.fr.pending[1:]
			if _, ok := m.(*protocol.Ping); ok && !wantPing {
				continue
			}
			return m
		}
		b, typ, err := wc.readMsg(time.Until(deadline))
		if err != nil {
			wc.t.Fatalf("reading: %v", err)
		}
		if wantBinary := wc.proto.Binary(); (typ == websocket.MessageBinary) != wantBinary {
			wc.t.Fatalf("message type %v for protocol %s", typ, wc.proto.Name())
		}
		wc.fr.feed(wc.t, b)
	}
}

// waitClosed reads until the server closes the socket, returning the Close message
// seen, if any.
func (wc *wsClient) waitClosed(timeout time.Duration) (*protocol.Close, error) {
	deadline := time.Now().Add(timeout)
	var closeMsg *protocol.Close
	for {
		for _, m := range wc.fr.pending {
			if cm, ok := m.(*protocol.Close); ok {
				closeMsg = cm
			}
		}
		wc.fr.pending = nil
		b, _, err := wc.readMsg(time.Until(deadline))
		if err != nil {
			if time.Now().After(deadline) {
				return closeMsg, err
			}
			return closeMsg, nil
		}
		if wc.fr.handshake {
			wc.fr.dec.Write(b)
			for {
				m, err := wc.fr.dec.Next()
				if err != nil || m == nil {
					break
				}
				wc.fr.pending = append(wc.fr.pending, m)
			}
		}
	}
}

func invocationText(t *testing.T, m protocol.Message) (target, arg string) {
	t.Helper()
	inv, ok := m.(*protocol.Invocation)
	if !ok {
		t.Fatalf("got %T %+v, want Invocation", m, m)
	}
	if len(inv.Arguments) > 0 {
		if err := inv.Arguments[0].Decode(&arg); err != nil {
			t.Fatal(err)
		}
	}
	return inv.Target, arg
}

func broadcast(s *Server, hubName, target, arg string) {
	v, _ := protocol.ValueOf(arg)
	s.Registry().SendAll(hubName, hub.NewPayload(&protocol.Invocation{Target: target, Arguments: []protocol.Value{v}}), nil)
}

// waitFor polls cond (cheap, in-memory state) until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// upstreamRecorder is a fake function app that records events.
type upstreamRecorder struct {
	mu     sync.Mutex
	events []upstreamEvent
	notify chan struct{}
	reply  func(w http.ResponseWriter, r *http.Request, body []byte)
}

type upstreamEvent struct {
	Event, ConnectionID, Query, UserID string
	Body                               []byte
	Header                             http.Header
}

func newUpstream(t *testing.T) (*upstreamRecorder, string) {
	rec := &upstreamRecorder{notify: make(chan struct{}, 1)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.events = append(rec.events, upstreamEvent{
			Event: r.Header.Get("X-ASRS-Event"), ConnectionID: r.Header.Get("X-ASRS-Connection-Id"),
			Query: r.Header.Get("X-ASRS-Client-Query"), UserID: r.Header.Get("X-ASRS-User-Id"), Body: body,
			Header: r.Header.Clone(),
		})
		reply := rec.reply
		rec.mu.Unlock()
		select {
		case rec.notify <- struct{}{}:
		default:
		}
		if reply != nil {
			reply(w, r, body)
			return
		}
		w.WriteHeader(http.StatusOK)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rec, "http://" + ln.Addr().String() + "/runtime/webhooks/signalr"
}

func (u *upstreamRecorder) wait(t *testing.T, timeout time.Duration, pred func(e upstreamEvent) bool) upstreamEvent {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		u.mu.Lock()
		for _, e := range u.events {
			if pred(e) {
				u.mu.Unlock()
				return e
			}
		}
		u.mu.Unlock()
		select {
		case <-u.notify:
		case <-deadline.C:
			t.Fatalf("timed out waiting for an upstream event")
		}
	}
}

var _ = bytes.NewReader

// pollPending reports whether a long-polling connection has a poll waiting.
func (c *conn) pollPending() bool {
	c.mu.Lock()
	p := c.poller
	c.mu.Unlock()
	if p == nil {
		return false
	}
	pending, _ := p.Activity()
	return pending
}
