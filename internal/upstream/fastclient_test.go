package upstream

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// echoCompletion answers an invocation with a framed Completion of the id it carries.
func echoCompletion(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m, err := protocol.JSON().ParseUnframed(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	inv := m.(*protocol.Invocation)
	frame, _ := protocol.JSON().AppendFrame(nil, &protocol.Completion{InvocationID: inv.InvocationID, Result: inv.Arguments[0], HasResult: true})
	_, _ = w.Write(frame)
}

// invokeAndWait makes one invocation with an argument and returns its Completion.
func invokeAndWait(t *testing.T, s *Session, r *replies, id string) *protocol.Completion {
	t.Helper()
	arg, _ := protocol.ValueOf("v" + id)
	s.Invoke(&protocol.Invocation{InvocationID: id, Target: "echo", Arguments: []protocol.Value{arg}})
	return r.next(t)
}

// The fast client sends plain-http calls over keep-alive connections: bursts of
// concurrent calls reuse the connections of the previous burst, and MaxConnsPerHost
// bounds them (calls beyond wait for a connection).
func TestFastClientPool(t *testing.T) {
	for _, tc := range []struct {
		maxConns, burst, wantDials int
	}{{0, 40, 40}, {8, 40, 8}} {
		var dials, open, maxOpen atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(5 * time.Millisecond) // the calls of a burst overlap
			echoCompletion(w, r)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				dials.Add(1)
				if n := open.Add(1); n > maxOpen.Load() {
					maxOpen.Store(n)
				}
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		}
		srv.Start()
		u := newUpstream(t, Options{Rules: ParseRules([]string{srv.URL}), MaxConnsPerHost: tc.maxConns})
		if u.fast == nil {
			t.Fatal("the own client has no fast path")
		}
		for round := 0; round < 2; round++ {
			var wg sync.WaitGroup
			for i := 0; i < tc.burst; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := newReplies(protocol.JSON())
					s := u.Open(ConnInfo{ID: "c" + strconv.Itoa(i), Hub: "chat", Protocol: protocol.JSON()}, r.fn)
					id := strconv.Itoa(round*1000 + i)
					if c := invokeAndWait(t, s, r, id); c.Error != "" || c.InvocationID != id {
						t.Errorf("call %s: %+v", id, c)
					}
				}()
			}
			wg.Wait()
		}
		if got := dials.Load(); got > int64(tc.wantDials) {
			t.Errorf("MaxConnsPerHost %d: two bursts of %d calls opened %d connections, want at most %d", tc.maxConns, tc.burst, got, tc.wantDials)
		}
		if tc.maxConns > 0 && maxOpen.Load() > int64(tc.maxConns) {
			t.Errorf("%d connections open at once, limit %d", maxOpen.Load(), tc.maxConns)
		}
		srv.Close()
	}
}

// A connection the upstream closed while it sat idle, longer ago than freshConn, is not
// used for the next call (a POST is not sent twice, so using it would fail the call):
// the call dials a new one. Responses framed by Connection: close and by chunks are
// read as well.
func TestFastClientConnectionEnds(t *testing.T) {
	addr, accepted, closed := closingServer(t, func(n int64, c net.Conn, frame []byte) {
		switch n % 3 {
		case 1: // keep-alive promised, then the connection closes
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(frame))+"\r\n\r\n"+string(frame))
		case 2: // chunked, then closed
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+
				strconv.FormatInt(int64(len(frame)), 16)+"\r\n"+string(frame)+"\r\n0\r\n\r\n")
		default: // no length: the body ends with the connection
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"+string(frame))
		}
	})
	u := newUpstream(t, Options{Rules: ParseRules([]string{"http://" + addr})})
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	for i := 1; i <= 6; i++ {
		id := strconv.Itoa(i)
		if c := invokeAndWait(t, s, r, id); c.Error != "" || c.InvocationID != id {
			t.Fatalf("call %d: %+v", i, c)
		}
		// The server has closed the connection (on loopback its FIN is in our socket
		// once close returns); a sleep here made the test fail under load.
		<-closed
		// Long ago, as far as the client can tell: its last request was sent more than
		// freshConn before the next call, which therefore peeks.
		ageIdleConns(u.fast, time.Hour)
	}
	if n := accepted.Load(); n != 6 {
		t.Errorf("%d connections for 6 calls, each closed by the server after its answer", n)
	}
	if st := u.Stats(); st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A connection reused within freshConn is not peeked, so a server that closes it
// right after an answer without saying so fails that call. It fails one call only: the
// client then peeks every reuse, and keeps doing so while the peeks find fresh
// connections closed.
func TestFastClientFreshCloseFailsOneCall(t *testing.T) {
	addr, accepted, closed := closingServer(t, func(_ int64, c net.Conn, frame []byte) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(frame))+"\r\n\r\n"+string(frame))
	})
	u := newUpstream(t, Options{Rules: ParseRules([]string{"http://" + addr})})
	u.fast.freshFor = time.Hour // every reuse is fresh, however slow the machine
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	var firstPeriod time.Time
	for i := 1; i <= 6; i++ {
		id := strconv.Itoa(i)
		c := invokeAndWait(t, s, r, id)
		switch {
		case i == 2 && c.Error != ErrTextUnreachable:
			t.Fatalf("call 2 reused a connection the server had closed without a peek: want %q, got %+v", ErrTextUnreachable, c)
		case i != 2 && (c.Error != "" || c.InvocationID != id):
			t.Fatalf("call %d: %+v", i, c)
		}
		if i != 2 {
			<-closed // call 2's connection was the one call 1 left: closed once
		}
		u.fast.mu.Lock()
		until := u.fast.peekUntil
		u.fast.mu.Unlock()
		if i == 2 {
			firstPeriod = until
			if !until.After(time.Now()) {
				t.Fatal("no peek period after a call on an unpeeked connection failed")
			}
		}
		if i >= 4 && !until.After(firstPeriod) {
			t.Errorf("after call %d: peeks that found fresh connections closed did not extend the period", i)
		}
	}
	if n := accepted.Load(); n != 5 {
		t.Errorf("%d connections for 6 calls, one failed on a closed connection; want 5", n)
	}
}

// closingServer answers each connection's first request with respond and closes the
// connection. It returns its address, the connections accepted so far and a channel
// that receives once per connection it has closed.
func closingServer(t *testing.T, respond func(n int64, c net.Conn, frame []byte)) (string, *atomic.Int64, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var accepted atomic.Int64
	closed := make(chan struct{}, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := accepted.Add(1)
			go func() {
				defer func() {
					_ = c.Close()
					closed <- struct{}{}
				}()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				body, _ := io.ReadAll(req.Body)
				m, _ := protocol.JSON().ParseUnframed(body)
				frame, _ := protocol.JSON().AppendFrame(nil, &protocol.Completion{InvocationID: m.(*protocol.Invocation).InvocationID})
				respond(n, c, frame)
			}()
		}
	}()
	return ln.Addr().String(), &accepted, closed
}

// ageIdleConns makes the idle connections' last requests d older.
func ageIdleConns(c *fastClient, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.hosts {
		for _, fc := range h.idle {
			fc.sentAt = fc.sentAt.Add(-d)
		}
	}
}

// writeAndAwait waits for the answer after writing the request without reading first.
// An answer that is in the socket before the wait begins, its readiness perhaps
// already taken in by the poller, must end the wait at once: a lost readiness would
// leave the call waiting until its deadline (here an i/o timeout error).
func TestWriteAndAwaitAnswerAlreadyThere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	answered := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
			answered <- struct{}{}
		}
	}()
	c := newFastClient(t.Context(), 0, time.Minute)
	defer c.close()
	fc, err := c.dial(ln.Addr().String(), time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.discard(fc)
	// The request is written through a conn whose Write returns only once the answer
	// is in our socket (on loopback it is, once the server's write has returned).
	slow := &answeredConn{Conn: fc.nc, answered: answered}
	fc.nc = slow
	pauses := map[string]func(){
		"none":  func() {},
		"yield": runtime.Gosched,
		// Not awaiting a signal: the goroutine parks, so the scheduler polls the network
		// and takes in the answer's readiness before the wait begins.
		"sleep": func() { time.Sleep(5 * time.Millisecond) },
	}
	for name, pause := range pauses {
		fc.buf = append(fc.buf[:0], "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"...)
		slow.pause = pause
		if err := fc.writeAndAwait(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp, err := http.ReadResponse(fc.br, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "ok" {
			t.Fatalf("%s: body %q", name, body)
		}
	}
}

// A body too large to be copied behind the request head is written after it (the
// write takes longer than the socket's buffer: it waits for the server to read while
// writeAndAwait holds the read side) and the answer is read whole.
func TestFastClientLargeBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echoCompletion))
	defer srv.Close()
	u := newUpstream(t, Options{Rules: ParseRules([]string{srv.URL}), MaxResponseSize: 4 << 20})
	if u.fast == nil {
		t.Fatal("the own client has no fast path")
	}
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	big := strings.Repeat("b", 600<<10) // under the test decoder's 1 MiB
	arg, _ := protocol.ValueOf(big)
	for i := range 2 { // the second call reuses the connection
		id := strconv.Itoa(i)
		s.Invoke(&protocol.Invocation{InvocationID: id, Target: "echo", Arguments: []protocol.Value{arg}})
		c := r.next(t)
		var got string
		if c.Error != "" || c.InvocationID != id || c.Result.Decode(&got) != nil || got != big {
			t.Fatalf("call %d: error %q, id %q, result of %d bytes", i, c.Error, c.InvocationID, len(got))
		}
	}
}

// Options.Timeout bounds a call, through the fast client too.
func TestCallTimeout(t *testing.T) {
	f, _, release := stallingFake(t)
	defer release()
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), Timeout: 100 * time.Millisecond})
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	start := time.Now()
	if c := invokeAndWait(t, s, r, "1"); c.Error != ErrTextTimeout {
		t.Errorf("stalled call: %+v", c)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the timeout of 100 ms took %v", d)
	}
	if st := u.Stats(); st.FailedTimeout != 1 {
		t.Errorf("stats %+v", st)
	}
}

// answeredConn's Write returns after the peer's answer to what it wrote has arrived,
// and after pause.
type answeredConn struct {
	net.Conn
	answered <-chan struct{}
	pause    func()
}

func (c *answeredConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil {
		<-c.answered
		c.pause()
	}
	return n, err
}
