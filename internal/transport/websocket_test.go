package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// events records what a WebSocket delivers to its handler.
type events struct {
	data   chan string
	closed chan error
}

func (e *events) Data(chunk []byte, _ bool) error { e.data <- string(chunk); return nil }
func (e *events) Closed(err error)                { e.closed <- err }

// upgrade opens a WebSocket to url with a raw socket and reads the 101 answer.
func upgrade(t *testing.T, url string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_, _ = io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return nc
}

// A socket closed by another goroutine (the server's writer failing, a drain) while
// Start registers it must not stay registered: the event loop would then watch it,
// and run, forever. (Before, closeSocket read the fd that register was writing.)
func TestWebSocketClosedWhileRegistering(t *testing.T) {
	var loop EventLoop
	ev := &events{data: make(chan string, 100), closed: make(chan error, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := loop.Accept(w, r, ev)
		if err != nil {
			t.Error(err)
			return
		}
		go ws.CloseNow()
		ws.Start()
	}))
	defer srv.Close()
	const n = 50
	for range n {
		upgrade(t, srv.URL)
	}
	for i := range n {
		select {
		case <-ev.closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d connections closed", i, n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := loop.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// A peer that sends its last frame and closes its socket at once can have both, the
// bytes and the FIN, reported by one edge-triggered readiness event. The reader then
// gets the bytes in a short read; the FIN must still be read, or the connection stays
// open (and watched by the event loop) until some timeout notices it.
func TestWebSocketSeesEOFBehindLastFrame(t *testing.T) {
	var loop EventLoop
	sent := make(chan struct{})
	ev := &events{data: make(chan string, 1), closed: make(chan error, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := loop.Accept(w, r, ev)
		if err != nil {
			t.Error(err)
			return
		}
		// Registered only once the frame and the FIN wait in the socket: the
		// registration reports both in one event.
		select {
		case <-sent:
		case <-time.After(5 * time.Second):
			t.Error("the client did not send")
		}
		ws.Start()
	}))
	defer srv.Close()

	nc := upgrade(t, srv.URL)
	// A masked text frame "hi" (mask 0), then the FIN.
	if _, err := nc.Write([]byte{0x81, 0x82, 0, 0, 0, 0, 'h', 'i'}); err != nil {
		t.Fatal(err)
	}
	if err := nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	close(sent)

	select {
	case d := <-ev.data:
		if d != "hi" {
			t.Fatalf("data %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the frame was not delivered")
	}
	select {
	case err := <-ev.closed:
		if err == nil {
			t.Fatal("an EOF without a closing handshake ended the connection without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the EOF behind the last frame was not noticed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := loop.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// acceptedPair is a started server-side WebSocket and the raw client connection of
// it, both closed when the test ends.
func acceptedPair(t *testing.T) (*WebSocket, net.Conn) {
	t.Helper()
	wss, ncs := acceptedPairs(t, 1)
	return wss[0], ncs[0]
}

// acceptedPairs is acceptedPair for n connections of one server and event loop.
func acceptedPairs(t *testing.T, n int) ([]*WebSocket, []net.Conn) {
	t.Helper()
	var loop EventLoop
	wsc := make(chan *WebSocket, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws, err := loop.Accept(w, r, &events{data: make(chan string, 100), closed: make(chan error, 100)}); err == nil {
			ws.Start()
			wsc <- ws
		}
	}))
	t.Cleanup(srv.Close)
	var wss []*WebSocket
	var ncs []net.Conn
	for range n {
		ncs = append(ncs, upgrade(t, srv.URL))
		select {
		case ws := <-wsc:
			t.Cleanup(func() { ws.CloseNow() })
			wss = append(wss, ws)
		case <-time.After(5 * time.Second):
			t.Fatal("no WebSocket")
		}
	}
	return wss, ncs
}

// writeDone waits for the outcome of a write that runs on another goroutine.
func writeDone(t *testing.T, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a write did not complete")
	}
}

// TryWriteFramed writes to a socket with room at once; to a full one (a client that
// does not read) it writes what fits and leaves the rest, holding the write lock so
// that no other frame cuts into the message, and FinishWrite completes it once the
// client reads: every message arrives whole and in order.
func TestTryWriteFramedLeavesTheRestOfAFullSocket(t *testing.T) {
	ws, nc := acceptedPair(t)

	message := func(i int) []byte {
		b := make([]byte, Headroom, Headroom+32<<10)
		return append(b, strings.Repeat(string(rune('a'+i%26)), 32<<10)...)
	}
	if rest, err := ws.TryWriteFramed(message(0), false); err != nil || len(rest) != 0 {
		t.Fatalf("an idle socket left %d bytes, error %v", len(rest), err)
	}
	// Fill the socket: the client reads nothing yet.
	sent := 1
	var rest []byte
	for ; sent < 1000 && len(rest) == 0; sent++ {
		var err error
		if rest, err = ws.TryWriteFramed(message(sent), false); err != nil {
			t.Fatal(err)
		}
	}
	if len(rest) == 0 {
		t.Fatal("1,000 messages of 32 KiB never filled the socket")
	}
	// The lock is held: a ping answer or another message waits for FinishWrite.
	done := make(chan error, 1)
	go func() { done <- ws.WriteMessage([]byte("after"), false) }()
	finished := make(chan error, 1)
	go func() { finished <- ws.FinishWrite(rest) }()

	br := bufio.NewReader(nc)
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range sent {
		want := strings.Repeat(string(rune('a'+i%26)), 32<<10)
		if got := readFrame(t, br); got != want {
			t.Fatalf("message %d of %d: %d bytes starting %q", i, sent, len(got), got[:min(len(got), 8)])
		}
	}
	if got := readFrame(t, br); got != "after" {
		t.Fatalf("last message %q", got)
	}
	writeDone(t, finished)
	writeDone(t, done)
}

// TryWriteFramed never waits for another write: while one holds the socket (here
// the rest of a message to a client that does not read yet; in service a Pong),
// it returns ErrWriteBusy at once, having written nothing and keeping no lock, and
// the batch can go through WriteFramed later, whole and in order.
func TestTryWriteFramedDoesNotWaitForAWriteInProgress(t *testing.T) {
	ws, nc := acceptedPair(t)
	message := func(s string) []byte { return append(make([]byte, Headroom), s...) }
	big := strings.Repeat("x", 32<<10)
	var rest []byte
	sent := 0
	for ; sent < 1000 && len(rest) == 0; sent++ {
		var err error
		if rest, err = ws.TryWriteFramed(message(big), false); err != nil {
			t.Fatal(err)
		}
	}
	if len(rest) == 0 {
		t.Fatal("1,000 messages of 32 KiB never filled the socket")
	}
	tried := make(chan error, 1)
	go func() {
		r, err := ws.TryWriteFramed(message("later"), false)
		if len(r) != 0 {
			err = errors.New("TryWriteFramed left a rest while another write held the socket")
		}
		tried <- err
	}()
	select {
	case err := <-tried:
		if !errors.Is(err, ErrWriteBusy) {
			t.Fatalf("got %v, want ErrWriteBusy", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("TryWriteFramed waited for the write in progress")
	}
	finished := make(chan error, 2)
	go func() { finished <- ws.FinishWrite(rest) }()
	go func() { finished <- ws.WriteFramed(message("later"), false) }()
	br := bufio.NewReader(nc)
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range sent {
		if got := readFrame(t, br); got != big {
			t.Fatalf("message %d of %d: %d bytes", i, sent, len(got))
		}
	}
	if got := readFrame(t, br); got != "later" {
		t.Fatalf("last message %q", got)
	}
	for range 2 {
		if err := <-finished; err != nil {
			t.Fatal(err)
		}
	}
}

// readFrame reads one unmasked server frame and returns its payload.
func readFrame(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			t.Fatal(err)
		}
		n = int(l[0])<<8 | int(l[1])
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			t.Fatal(err)
		}
		n = 0
		for _, b := range l {
			n = n<<8 | int(b)
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatal(err)
	}
	return string(p)
}

// A client that reset its connection makes TryWriteFramed fail (EPIPE or ECONNRESET
// from the raw send, or the socket already closed by the reader that saw the reset),
// never report the frame as written.
func TestTryWriteFramedToAResetPeerFails(t *testing.T) {
	ws, nc := acceptedPair(t)
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		t.Fatalf("client connection is %T", nc)
	}
	_ = tc.SetLinger(0) // close sends a reset
	_ = tc.Close()
	message := func() []byte {
		b := make([]byte, Headroom, Headroom+16)
		return append(b, "after the reset"...)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rest, err := ws.TryWriteFramed(message(), false)
		if err != nil {
			return
		}
		if len(rest) != 0 {
			t.Fatalf("a reset socket left %d bytes without an error", len(rest))
		}
		runtime.Gosched()
	}
	t.Fatal("writes to a reset connection kept succeeding")
}
