package bench

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// stubServer serves an http.Handler (the upstream scenario's functions.Trigger) over
// HTTP/1.1 keep-alive connections with less machinery than net/http's Server: one
// goroutine per connection reads a request with http.ReadRequest, runs the handler
// into a buffer and writes the whole response in one write. net/http's Server also
// starts a background read per request (a goroutine and a read that finds nothing),
// makes a cancelable context per request and formats a Date header: in the upstream
// scenario the function app shares the two cores with the server under test, and that
// was CPU the server did not get. What the function app checks (content type,
// X-ASRS-* headers, the signature, the body) is the Trigger's, unchanged.
//
// It is a test server for the bench only: no TLS, no 100-continue, no pipelining
// beyond answering requests in order, no timeouts other than idleTimeout.
type stubServer struct {
	h           http.Handler
	ln          net.Listener
	idleTimeout time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newStubServer(ln net.Listener, h http.Handler) *stubServer {
	return &stubServer{h: h, ln: ln, idleTimeout: 2 * time.Minute, conns: make(map[net.Conn]struct{})}
}

// serve accepts connections until close.
func (s *stubServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// close stops accepting, closes every connection and waits for their goroutines.
func (s *stubServer) close() {
	s.mu.Lock()
	s.closed = true
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *stubServer) serveConn(c net.Conn) {
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	br := bufio.NewReaderSize(c, 4096)
	w := &stubResponse{header: make(http.Header)}
	remote := c.RemoteAddr().String()
	out := newAwaitWriter(c)
	var deadline time.Time
	for {
		// The idle deadline moves once per quarter of idleTimeout rather than per
		// request (a timer reset per call in the load generator's process), so a
		// connection is closed after 3/4 to all of idleTimeout without a request.
		if now := time.Now(); s.idleTimeout > 0 && deadline.Sub(now) < s.idleTimeout*3/4 {
			deadline = now.Add(s.idleTimeout)
			_ = c.SetReadDeadline(deadline)
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			}
			return
		}
		req.RemoteAddr = remote
		w.reset()
		s.h.ServeHTTP(w, req)
		// What the handler left unread must go before the next request is parsed.
		_, discardErr := io.Copy(io.Discard, req.Body)
		keep := !req.Close && discardErr == nil
		if err := out.write(w.render(keep), keep && br.Buffered() == 0); err != nil || !keep {
			return
		}
	}
}

// awaitWriter writes on a connection and, with await, waits until the connection is
// readable, so that what the peer sends back is read with one read instead of a read
// that finds nothing (EAGAIN), the wait, and a second read: the function app's answer
// is followed by the server's next request on that connection, a raw client's request
// (writeAwait) by its answer. The write happens
// inside RawConn.Read's callback because RawConn.Read clears the readiness the poller
// recorded before it calls it: bytes arriving between a write made before and the
// wait would be forgotten (the reasoning of the upstream client's writeAndAwait). A
// wake-up without a request (the peer's FIN, an error) is met by the read that
// follows; the read deadline bounds the wait as it bounds a read.
type awaitWriter struct {
	c       net.Conn
	rc      syscall.RawConn // nil: plain writes
	step    func(uintptr) bool
	b       []byte
	written bool
	err     error
}

func newAwaitWriter(c net.Conn) *awaitWriter {
	w := &awaitWriter{c: c}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			w.rc = rc
		}
	}
	w.step = w.awaitStep // bound once: no closure per answer
	return w
}

// write writes b and, with await, returns once the connection is readable.
func (w *awaitWriter) write(b []byte, await bool) error {
	if !await || w.rc == nil {
		_, err := w.c.Write(b)
		return err
	}
	w.b, w.written, w.err = b, false, nil
	err := w.rc.Read(w.step)
	w.b = nil
	if w.err != nil {
		return w.err
	}
	return err
}

func (w *awaitWriter) awaitStep(uintptr) bool {
	if w.written {
		return true // readable
	}
	w.written = true
	_, w.err = w.c.Write(w.b)
	return w.err != nil // false: wait for the next request
}

// stubResponse is the http.ResponseWriter of stubServer: status, headers and body are
// kept until the handler returns, then rendered with a Content-Length.
type stubResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
	out    []byte
}

func (w *stubResponse) reset() {
	clear(w.header)
	w.status = 0
	w.body.Reset()
}

func (w *stubResponse) Header() http.Header { return w.header }

func (w *stubResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *stubResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// render is the response as it goes on the wire.
func (w *stubResponse) render(keep bool) []byte {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	b := append(w.out[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	for k, vs := range w.header {
		if k == "Content-Length" || k == "Connection" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	if status == http.StatusNoContent || status == http.StatusNotModified {
		b = append(b, "\r\n"...) // no body, no length
	} else {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(w.body.Len()), 10)
		b = append(b, "\r\n\r\n"...)
		b = append(b, w.body.Bytes()...)
	}
	if cap(b) <= 64<<10 {
		w.out = b
	}
	return b
}
