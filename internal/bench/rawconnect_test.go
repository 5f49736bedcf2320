package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/internal/server"
	"github.com/signalbox-io/signalbox/internal/servertest"
	"github.com/signalbox-io/signalbox/management"
)

const rawTestKey = "raw-connect-test-key-0123456789abcdefghijklmnop"

// startRealServer serves a Signalbox server in this process on a loopback port until
// the test ends and returns its endpoint.
func startRealServer(t *testing.T) string {
	t.Helper()
	cfg := server.Default()
	cfg.AccessKeys = server.StringList{rawTestKey}
	cfg.NegotiateRate, cfg.MaxConnectionsPerAddress = 0, 0
	return servertest.Start(t, cfg)
}

// realConnector starts a real server and a connector for its hub "bench".
func realConnector(t *testing.T) (endpoint, hubURL string, rc *rawConnector) {
	t.Helper()
	endpoint = startRealServer(t)
	hubURL = auth.ClientURL(endpoint, "bench")
	rc, err := newRawConnector([]string{hubURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.close)
	return endpoint, hubURL, rc
}

func clientToken(t *testing.T, key, endpoint, user string) string {
	t.Helper()
	tok, err := auth.NewToken(key, auth.TokenOptions{Audience: auth.ClientAudience(endpoint, "bench"), UserID: user, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// closeRaw closes a client whose read loop has not started.
func closeRaw(c *rawClient) {
	go c.readLoop(nil, 0)
	_ = c.Close()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A raw connect to a real server is a live SignalR connection of its user: a message
// sent to the user through the REST API arrives on it. The dialer's negotiate
// connection is kept and used again, and a kept connection the server closed is
// replaced.
func TestRawConnectRealServer(t *testing.T) {
	endpoint, hubURL, rc := realConnector(t)
	ctx := testCtx(t)

	c, err := rc.connect(ctx, hubURL, clientToken(t, rawTestKey, endpoint, "u1"), "u1")
	if err != nil {
		t.Fatal(err)
	}
	// Spread over loopback source addresses (srcaddr_linux.go).
	if src := c.nc.LocalAddr().String(); runtime.GOOS == "linux" && !strings.HasPrefix(src, "127.88.0.") {
		t.Errorf("connected from %s, want 127.88.0.x", src)
	}
	ep, err := connection.NewEndpoint("", connection.Primary, "Endpoint="+endpoint+";AccessKey="+rawTestKey+";Version=1.0;", nil)
	if err != nil {
		t.Fatal(err)
	}
	mgmt, err := management.NewClient([]connection.Endpoint{ep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mgmt.Close()
	if err := mgmt.SendToUser(ctx, "bench", "u1", "hello", []any{42}, nil); err != nil {
		t.Fatal(err)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		op, msg, err := c.readMessage(nil)
		if err != nil {
			t.Fatal(err)
		}
		if op == opText && bytes.Contains(msg, []byte(`"target":"hello"`)) {
			if !bytes.Contains(msg, []byte(`"arguments":[42]`)) {
				t.Fatalf("message %q", msg)
			}
			break
		}
	}
	closeRaw(c)

	// The dialer came back with its negotiate connection; the next connect uses it.
	if len(rc.idle) != 1 {
		t.Fatalf("%d idle dialers, want 1", len(rc.idle))
	}
	d := <-rc.idle
	if len(d.conns) != 1 {
		t.Fatalf("%d negotiate connections, want 1", len(d.conns))
	}
	var kept *negConn
	for _, nc := range d.conns {
		kept = nc
	}
	rc.idle <- d
	c2, err := rc.connect(ctx, hubURL, clientToken(t, rawTestKey, endpoint, "u2"), "u2")
	if err != nil {
		t.Fatal(err)
	}
	closeRaw(c2)
	d = <-rc.idle
	if len(d.conns) != 1 || d.conns[strings.TrimPrefix(endpoint, "http://")] != kept {
		t.Fatalf("negotiate connections %v, want the kept one only", d.conns)
	}
	// The kept connection ends (as when the server's idle timeout closes it): the
	// next connect negotiates on a new one.
	kept.nc.Close()
	rc.idle <- d
	c3, err := rc.connect(ctx, hubURL, clientToken(t, rawTestKey, endpoint, "u3"), "u3")
	if err != nil {
		t.Fatalf("after the kept connection ended: %v", err)
	}
	closeRaw(c3)
}

// The server's refusals are failures: a token signed with another key (401 at
// negotiate), a hub the token is not for.
func TestRawConnectRefused(t *testing.T) {
	endpoint, hubURL, rc := realConnector(t)
	ctx := testCtx(t)
	for _, tc := range []struct{ name, hubURL, key string }{
		{"a token of another key", hubURL, "another-key-0123456789abcdefghijklmnopqrstu"},
		{"a token for another hub", auth.ClientURL(endpoint, "other"), rawTestKey},
	} {
		c, err := rc.connect(ctx, tc.hubURL, clientToken(t, tc.key, endpoint, "u1"), "u1")
		if err == nil {
			closeRaw(c)
		}
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
			t.Errorf("%s: err = %v, want HTTP 401", tc.name, err)
		}
	}
}

// A negotiate that answers {url, accessToken} (an application's negotiate function)
// is followed to the service, with the access token it gives; the application here
// answers in chunks.
func TestRawConnectRedirect(t *testing.T) {
	endpoint := startRealServer(t)
	var asked sync.Mutex
	var query string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/negotiate" {
			http.NotFound(w, r)
			return
		}
		asked.Lock()
		query = r.URL.RawQuery
		asked.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.(http.Flusher).Flush() // chunked
		_ = json.NewEncoder(w).Encode(map[string]string{
			"url": auth.ClientURL(endpoint, "bench"), "accessToken": clientToken(t, rawTestKey, endpoint, "u9"),
		})
	}))
	defer app.Close()
	rc, err := newRawConnector([]string{auth.ClientURL(endpoint, "bench")})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	c, err := rc.connect(testCtx(t), app.URL+"/api", "app-token", "u9")
	if err != nil {
		t.Fatal(err)
	}
	closeRaw(c)
	asked.Lock()
	defer asked.Unlock()
	if query != "negotiateVersion=1" {
		t.Fatalf("the application was asked with %q", query)
	}
}

// fakeService is a SignalR service that answers negotiate with negotiate (status
// negStatus), the upgrade with Sec-WebSocket-Accept accept(key) and the handshake with
// handshake, to check that the raw connect fails where a client must.
type fakeService struct {
	negotiate string
	negStatus int
	accept    func(key string) string
	handshake string

	mu    sync.Mutex
	query url.Values // of the WebSocket request
	hsReq []byte     // the handshake request received
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/client/negotiate" {
		w.WriteHeader(f.negStatus)
		_, _ = io.WriteString(w, f.negotiate)
		return
	}
	f.mu.Lock()
	f.query = r.URL.Query()
	f.mu.Unlock()
	nc, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer nc.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		f.accept(r.Header.Get("Sec-WebSocket-Key")))
	if brw.Flush() != nil {
		return
	}
	if req, ok := readClientFrame(brw.Reader); ok {
		f.mu.Lock()
		f.hsReq = req
		f.mu.Unlock()
		_, _ = nc.Write(append([]byte{0x81, byte(len(f.handshake))}, f.handshake...))
	}
	_, _ = io.Copy(io.Discard, brw) // until the client closes
}

// readClientFrame reads one short masked frame and unmasks it.
func readClientFrame(br *bufio.Reader) ([]byte, bool) {
	var h [6]byte
	if _, err := io.ReadFull(br, h[:]); err != nil || h[1]&0x80 == 0 || h[1]&0x7f > 125 {
		return nil, false
	}
	p := make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(br, p); err != nil {
		return nil, false
	}
	for i := range p {
		p[i] ^= h[2+i&3]
	}
	return p, true
}

const fakeNegotiate = `{"negotiateVersion":1,"connectionId":"cid","connectionToken":"ctok/+=","availableTransports":[{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}`

func rightAccept(key string) string {
	a := acceptKey([]byte(key))
	return string(a[:])
}

// Each answer a client must refuse fails the connect, with the reason; the answers
// of a service that does everything right succeed (so the failures are the checks').
func TestRawConnectChecks(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*fakeService)
		want   string // in the error; "" = success
	}{
		{"right", func(*fakeService) {}, ""},
		{"handshake error", func(f *fakeService) { f.handshake = `{"error":"Requested protocol 'json' is not available."}` + "\x1e" }, "handshake rejected: Requested protocol"},
		{"handshake not json", func(f *fakeService) { f.handshake = "nope\x1e" }, "handshake"},
		{"hub message for handshake", func(f *fakeService) { f.handshake = `{"type":6}` + "\x1e" }, "handshake"},
		{"wrong accept", func(f *fakeService) { f.accept = func(string) string { return "x" } }, "Sec-WebSocket-Accept"},
		{"negotiate error", func(f *fakeService) { f.negotiate = `{"error":"go \"away\""}` }, `server error: go "away"`},
		{"negotiate 503", func(f *fakeService) { f.negStatus = 503; f.negotiate = "busy" }, "HTTP 503: busy"},
		{"no websockets", func(f *fakeService) {
			f.negotiate = strings.Replace(fakeNegotiate, `"WebSockets"`, `"LongPolling"`, 1)
		}, "does not offer WebSockets"},
		{"binary websockets only", func(f *fakeService) {
			f.negotiate = strings.Replace(fakeNegotiate, `["Text","Binary"]`, `["Binary"]`, 1)
		}, "does not offer WebSockets"},
		{"version 1 without token", func(f *fakeService) {
			f.negotiate = strings.Replace(fakeNegotiate, `"connectionToken":"ctok/+=",`, "", 1)
		}, "without connectionToken"},
		{"no connection id", func(f *fakeService) { f.negotiate = `{"negotiateVersion":0}` }, "neither url nor connectionId"},
		{"invalid json", func(f *fakeService) { f.negotiate = `{"connectionId":` }, "invalid answer"},
		{"redirect to ftp", func(f *fakeService) { f.negotiate = `{"url":"ftp://x/","accessToken":"t"}` }, "invalid URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeService{negotiate: fakeNegotiate, negStatus: 200, accept: rightAccept, handshake: "{}\x1e"}
			tc.mutate(f)
			srv := httptest.NewServer(f)
			defer srv.Close()
			hubURL := srv.URL + "/client/?hub=bench"
			rc, err := newRawConnector([]string{hubURL})
			if err != nil {
				t.Fatal(err)
			}
			defer rc.close()
			c, err := rc.connect(testCtx(t), hubURL, "tok.en", "u1")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				closeRaw(c)
				f.mu.Lock()
				defer f.mu.Unlock()
				// As the JavaScript client: the connection token (escaped) as id, the
				// access token as access_token; the JSON handshake.
				if f.query.Get("id") != "ctok/+=" || f.query.Get("access_token") != "tok.en" || f.query.Get("hub") != "bench" {
					t.Fatalf("WebSocket query %v", f.query)
				}
				if !bytes.Equal(f.hsReq, jsonHandshake) {
					t.Fatalf("handshake request %q", f.hsReq)
				}
				return
			}
			if err == nil {
				closeRaw(c)
				t.Fatalf("connected; want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q in it", err, tc.want)
			}
		})
	}
}

// A connect client's read loop (no receiver) takes invocations, unreadable records
// and pings without a receiver, answers the ping, and ends on the server's hub Close.
func TestRawReadLoopWithoutReceiver(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	c := newRawClient(cli, "u0", rawConnBuffer)
	var stream []byte
	stream = append(stream, serverFrame(true, opText, []byte(benchRecord(time.Now(), 1, "a")+`{"type":1,"arguments":["x"]}`+"\x1e"+"unterminated"))...)
	stream = append(stream, serverFrame(true, opPing, []byte("hi"))...)
	stream = append(stream, serverFrame(true, opText, []byte(strings.Repeat(" ", 3*rawIdleBuffer)+`{"type":7,"error":"bye"}`+"\x1e"))...)
	go func() { _, _ = io.Copy(io.Discard, srv) }() // the pong: the pipe does not buffer
	go func() { _, _ = srv.Write(stream) }()
	go c.readLoop(nil, 0)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the read loop did not end on the hub Close")
	}
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), `"error":"bye"`) {
		t.Fatalf("err = %v", err)
	}
}

// answeredConn's Write returns only once the peer has written its answer: the answer
// is in the socket before writeAwait's wait begins. With settle it also gives the
// runtime's poller time to take in the socket's readiness (nothing signals that).
type answeredConn struct {
	*net.TCPConn
	answered chan struct{}
	settle   time.Duration
}

func (c *answeredConn) Write(b []byte) (int, error) {
	n, err := c.TCPConn.Write(b)
	<-c.answered
	time.Sleep(c.settle)
	return n, err
}

// writeAwait returns at once when the answer came before its wait, whether or not
// the poller saw it come, and the answer is then read whole.
func TestWriteAwaitAnswerAlreadyThere(t *testing.T) {
	for _, settle := range []time.Duration{0, 50 * time.Millisecond} {
		writeAwaitAnswered(t, settle)
	}
}

func writeAwaitAnswered(t *testing.T, settle time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	answered := make(chan struct{}, 1)
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			return
		}
		defer sc.Close()
		var req [5]byte
		if _, err := io.ReadFull(sc, req[:]); err == nil {
			_, _ = sc.Write([]byte("world"))
		}
		answered <- struct{}{}
		_, _ = io.Copy(io.Discard, sc)
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(3 * time.Second))
	c := &answeredConn{TCPConn: nc.(*net.TCPConn), answered: answered, settle: settle}
	br := bufio.NewReader(c)
	if err := writeAwait(c, br, []byte("hello")); err != nil {
		t.Fatalf("settle %v: writeAwait: %v", settle, err)
	}
	var got [5]byte
	if _, err := io.ReadFull(br, got[:]); err != nil || string(got[:]) != "world" {
		t.Fatalf("settle %v: read %q, %v", settle, got, err)
	}
}
