package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/signalbox-io/signalbox/internal/httpwire"
	"github.com/signalbox-io/signalbox/internal/rawtcp"
)

// stubServer serves an http.Handler (the upstream scenario's functions.Trigger) over
// HTTP/1.1 keep-alive connections with less machinery than net/http's Server: one
// goroutine per connection reads a request with a stubReader, runs the handler
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
		// Raw reads and writes: the function app's process goes idle between calls,
		// and a system call through package syscall would wake its sysmon each time
		// (package rawtcp).
		c = rawtcp.Wrap(c)
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
	rr := newStubReader(c, c.RemoteAddr().String())
	w := &stubResponse{header: make(http.Header)}
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
		req, err := rr.read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			}
			return
		}
		w.reset()
		s.h.ServeHTTP(w, req)
		// What the handler left unread must go before the next request is parsed.
		keep := !req.Close && rr.discardBody() == nil
		if err := out.write(w.render(keep), keep && rr.br.Buffered() == 0); err != nil || !keep {
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

// maxStubHead bounds a request's line and header block (net/http's default
// MaxHeaderBytes).
const maxStubHead = 1 << 20

// errStubRequest is a request the stub cannot read: answered 400 and closed.
var errStubRequest = errors.New("bench: malformed HTTP request")

// stubReader reads the HTTP/1.1 requests of one connection into one http.Request,
// Header map and body reader that it reuses: http.ReadRequest allocated ~30 objects
// per request (a textproto reader, the header map and its strings, a URL, a body
// reader) and its parsing was a sixth of the function app's CPU in the upstream
// scenario. What the handler sees is what http.ReadRequest gives (Host moved out of
// the header, canonical header keys, values trimmed, Content-Length and
// Connection: close honoured); it is stricter in places RFC 9112 allows a server to
// be (obsolete line folding, header names with spaces, a length with a
// Transfer-Encoding: all rejected), and reads chunked bodies.
//
// The request is valid until the next read: a handler must not keep it, its Header
// or its Body after it returns (the header strings it may keep).
type stubReader struct {
	br     *bufio.Reader
	remote string
	req    http.Request
	header http.Header
	body   stubBody
	head   []byte      // the request line and header lines, as received, keys canonicalized
	spans  []stubField // the header lines within head
	vals   []string    // backing arrays of single-valued header entries
	target string      // the last request target and its parsed form
	url    url.URL
	parsed *url.URL
}

// stubField locates one header line's key and value in stubReader.head.
type stubField struct{ k0, k1, v0, v1 int }

func newStubReader(c io.Reader, remote string) *stubReader {
	r := &stubReader{br: bufio.NewReaderSize(c, 4096), remote: remote, header: make(http.Header)}
	r.body.br = r.br
	return r
}

// read reads the next request; io.EOF when the connection ended between requests.
func (r *stubReader) read() (*http.Request, error) {
	if err := r.readHead(); err != nil {
		return nil, err
	}
	// Request line: method SP target SP version.
	line := r.head[:r.spans[0].k0]
	line = line[:len(line)-lineEndLen(line)]
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	// Exactly two spaces: a target with a space is not one (net/http reads the
	// second word as the target and refuses the rest as the version).
	if sp1 <= 0 || sp2 <= sp1+1 || bytes.IndexByte(line[sp1+1:sp2], ' ') >= 0 || !httpwire.Token(line[:sp1]) {
		return nil, errStubRequest
	}
	major, minor, ok := httpVersion(line[sp2+1:])
	// The service speaks HTTP/1.1; only 1.x is read (net/http reads a 1.0 or older
	// request's body by other rules: a Transfer-Encoding does not count there).
	if !ok || major != 1 {
		return nil, errStubRequest
	}
	spans := r.spans[1:]
	for _, f := range spans {
		if !canonicalizeKey(r.head[f.k0:f.k1]) {
			return nil, errStubRequest
		}
	}
	// One string for the whole head: keys and values are slices of it.
	s := string(r.head)
	method := s[:sp1]
	target := s[sp1+1 : sp2]
	if target != r.target || r.parsed == nil {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return nil, errStubRequest
		}
		r.target, r.parsed = target, u
	}
	r.url = *r.parsed // a copy: the handler may change its own
	h := r.header
	clear(h)
	vals := r.vals[:0]
	for _, f := range spans {
		k, v := s[f.k0:f.k1], s[f.v0:f.v1]
		if vv, ok := h[k]; ok {
			h[k] = append(vv, v)
			continue
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)] // an append copies
	}
	r.vals = vals
	if hp := h["Pragma"]; len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	r.req = http.Request{
		Method:     method,
		URL:        &r.url,
		Proto:      s[sp2+1 : len(line)],
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     h,
		Host:       r.url.Host,
		RequestURI: target,
		RemoteAddr: r.remote,
	}
	if len(h["Host"]) > 1 {
		return nil, errStubRequest // as net/http: which one would be meant?
	}
	if r.req.Host == "" && len(h["Host"]) > 0 {
		r.req.Host = h["Host"][0]
	}
	delete(h, "Host")
	conn := h["Connection"]
	hasClose := valuesHaveToken(conn, "close")
	r.req.Close = major < 1 || hasClose || (major == 1 && minor == 0 && !valuesHaveToken(conn, "keep-alive"))
	if err := r.setBody(); err != nil {
		return nil, err
	}
	return &r.req, nil
}

// readHead reads the request line and the header lines up to the empty line into
// r.head, recording where each header line is in r.spans (r.spans[0].k0 is where
// the request line ends).
func (r *stubReader) readHead() error {
	r.head, r.spans = r.head[:0], r.spans[:0]
	for {
		start := len(r.head)
		for {
			frag, err := r.br.ReadSlice('\n')
			if len(r.head)+len(frag) > maxStubHead {
				return errStubRequest
			}
			r.head = append(r.head, frag...)
			if err == nil {
				break
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				if len(r.head) == 0 {
					return io.EOF
				}
				return io.ErrUnexpectedEOF
			}
			return fmt.Errorf("bench: read request: %w", err)
		}
		line := r.head[start:]
		line = line[:len(line)-lineEndLen(line)]
		if start == 0 {
			if len(line) == 0 {
				return errStubRequest
			}
			r.spans = append(r.spans, stubField{k0: len(r.head)})
			continue
		}
		if len(line) == 0 {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errStubRequest // obsolete line folding
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errStubRequest
		}
		v := line[colon+1:]
		for _, c := range v {
			if c < ' ' && c != '\t' || c == 0x7f {
				return errStubRequest
			}
		}
		v0 := start + colon + 1
		v1 := start + len(line)
		for v0 < v1 && (r.head[v0] == ' ' || r.head[v0] == '\t') {
			v0++
		}
		for v1 > v0 && (r.head[v1-1] == ' ' || r.head[v1-1] == '\t') {
			v1--
		}
		r.spans = append(r.spans, stubField{k0: start, k1: start + colon, v0: v0, v1: v1})
	}
}

// setBody sets the request's body from Content-Length or Transfer-Encoding: chunked;
// without either a request has none.
func (r *stubReader) setBody() error {
	h := r.req.Header
	te, cl := h["Transfer-Encoding"], h["Content-Length"]
	switch {
	case len(te) > 0:
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") || len(cl) > 0 || r.req.ProtoMinor == 0 {
			return errStubRequest
		}
		delete(h, "Transfer-Encoding")
		r.req.TransferEncoding = []string{"chunked"}
		r.req.ContentLength = -1
		r.body.chunked = httputil.NewChunkedReader(r.br)
		r.req.Body = &r.body
	case len(cl) > 0:
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil || cl[0][0] == '+' {
			return errStubRequest
		}
		for _, v := range cl[1:] {
			if v != cl[0] {
				return errStubRequest
			}
		}
		h["Content-Length"] = cl[:1] // as net/http: one of equal lengths
		r.req.ContentLength = int64(n)
		r.body.n, r.body.chunked = int64(n), nil
		r.req.Body = &r.body
		if n == 0 {
			r.req.Body = http.NoBody
		}
	default:
		r.req.Body = http.NoBody
	}
	return nil
}

// discardBody reads what the handler left of the body.
func (r *stubReader) discardBody() error {
	if r.req.Body == http.NoBody {
		return nil
	}
	if r.body.chunked != nil {
		_, err := io.Copy(io.Discard, r.body.chunked)
		r.body.chunked = nil
		if err != nil {
			return err
		}
		// The chunked reader stops after the last chunk; the empty line that ends
		// the trailer section follows. The service sends no trailers, so the stub
		// takes none (net/http would parse them; refusing is the stricter side).
		line, err := r.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("bench: request trailer: %w", err)
		}
		if string(line) != "\r\n" {
			return errStubRequest
		}
		return nil
	}
	n, err := r.br.Discard(int(r.body.n))
	r.body.n -= int64(n)
	return err
}

// stubBody is a request body: the next n bytes of the connection, or a chunked body.
type stubBody struct {
	br      *bufio.Reader
	n       int64
	chunked io.Reader
}

func (b *stubBody) Read(p []byte) (int, error) {
	if b.chunked != nil {
		return b.chunked.Read(p)
	}
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if errors.Is(err, io.EOF) && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *stubBody) Close() error { return nil }

// lineEndLen is the length of line's ending: "\r\n", "\n" or none.
func lineEndLen(line []byte) int {
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		return 2
	case bytes.HasSuffix(line, []byte("\n")):
		return 1
	}
	return 0
}

// httpVersion parses "HTTP/1.1" quickly and other versions as net/http does.
func httpVersion(v []byte) (major, minor int, ok bool) {
	if string(v) == "HTTP/1.1" {
		return 1, 1, true
	}
	return http.ParseHTTPVersion(string(v))
}

// canonicalizeKey puts a header name into its canonical (textproto) spelling in
// place; false when it is not a token.
func canonicalizeKey(k []byte) bool {
	if !httpwire.Token(k) {
		return false
	}
	upper := true
	for i, c := range k {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k[i] = c
		upper = c == '-'
	}
	return true
}

// valuesHaveToken reports whether any of a header's values holds token.
func valuesHaveToken(values []string, token string) bool {
	for _, v := range values {
		if headerHasToken([]byte(v), token) {
			return true
		}
	}
	return false
}
