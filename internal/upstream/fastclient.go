package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/signalbox-io/signalbox/internal/rawtcp"
)

// fastClient sends the upstream POSTs to plain http:// targets (the Functions host on
// localhost or in the cluster) itself, over keep-alive connections per host, from the
// calling goroutine. net/http's Transport hands every request to a writer goroutine and
// every response from a reader goroutine of the connection, formats the request line with
// fmt and sorts the headers per request; in profiles of the upstream benchmark that was a
// quarter of the server's CPU per call. Here the request head is rendered once per
// session and event (route.header), written with the body in one write, and the response
// is read with http.ReadResponse on the connection's own buffer. https targets, proxies,
// URLs with user info and a caller's Options.HTTPClient keep using net/http.
//
// Like net/http, a POST is never sent twice: a connection the server closed while idle
// is noticed before it is reused (a non-blocking peek; see freshConn for when it is
// skipped), not by retrying.
type fastClient struct {
	maxConns    int // per host; 0 = no limit
	idleTimeout time.Duration
	freshFor    time.Duration   // freshConn; a field so that tests can set it
	base        context.Context // ends dials when Close gives up

	mu      sync.Mutex
	hosts   map[string]*hostConns
	inUse   map[*fastConn]struct{} // aborted by Close
	aborted bool
	closed  bool
	// peekUntil: until then every reuse is peeked, fresh or not (see freshConn).
	peekUntil time.Time
	reaper    chan struct{} // closed to stop the idle reaper; nil until one runs
}

// hostConns are the connections to one host:port.
type hostConns struct {
	idle    []*fastConn // most recently used last
	open    int         // idle and in use
	waiters int
	freed   chan struct{} // closed (and replaced) when a connection frees up and someone waits
}

type fastConn struct {
	addr      string
	nc        net.Conn
	rc        syscall.RawConn // for the liveness peek and writeAndAwait; nil when the conn has none
	br        *bufio.Reader
	buf       []byte    // the request being written
	body      []byte    // the body being written after buf; nil when buf holds it
	sentAt    time.Time // when the last request began to be written
	idleSince time.Time
	unpeeked  bool // reused without the peek (fresh)
	raw       rawSteps
}

var (
	errFastClosed   = errors.New("upstream client closed")
	errFastNoConn   = errors.New("no connection to the upstream host became free in time")
	errFastBadReply = errors.New("malformed HTTP response")
)

func newFastClient(base context.Context, maxConns int, idleTimeout time.Duration) *fastClient {
	return &fastClient{
		maxConns:    maxConns,
		idleTimeout: idleTimeout,
		freshFor:    freshConn,
		base:        base,
		hosts:       make(map[string]*hostConns),
		inUse:       make(map[*fastConn]struct{}),
	}
}

// fastTarget reports whether calls to target can go through the fast client: plain
// http, no user info (net/http would send it as basic auth) and no proxy configured for it.
func fastTarget(target *url.URL) bool {
	if target == nil || target.Scheme != "http" || target.User != nil || target.Host == "" {
		return false
	}
	proxy, err := http.ProxyFromEnvironment(&http.Request{URL: target})
	return err == nil && proxy == nil
}

// dialAddr is host:port of target, port 80 when it has none.
func dialAddr(target *url.URL) string {
	port := target.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(target.Hostname(), port)
}

// freshConn is how recently a connection must have carried a request for its reuse to
// skip the liveness peek. The peek is a system call per call (one of the 8-11 the
// server makes per call in the upstream benchmark) and is there to notice a connection
// the server closed while it sat idle. A server closes an idle keep-alive connection
// when its idle timeout expires, when it shuts down, or when it crashes:
//   - Idle timeout: the server's idle time began when it answered, after the request
//     was sent, so it is shorter than the time since the request was sent: under
//     freshConn, far below the keep-alive timeouts servers use (Kestrel, which hosts
//     Azure Functions, 130 s; nginx 75 s; Node.js 5 s; Go's net/http none unless set).
//   - Shutdown or crash: a call reusing a connection the server has just closed fails
//     ("upstream unreachable") where the peek would have had it dial a new one. Where
//     nothing listens any more, the new connection is refused and the call fails all
//     the same. Where another server takes over the address at once (a restart behind
//     a load balancer), it costs at most one call per idle connection that carried a
//     request within freshConn, before the peeks below start. (The peek itself cannot
//     save a call whose connection closes between the peek and the write.)
//   - A server that closes sooner (one that closes after an answer without announcing
//     "Connection: close", or a proxy with a keep-alive timeout of a few
//     milliseconds) fails one call: after a call on an unpeeked connection fails,
//     every reuse is peeked for peekPeriod, and for another peekPeriod whenever such
//     a peek finds a fresh connection closed. A server that keeps closing early keeps
//     being peeked; after a restart the peeks stop again.
//
// A response with "Connection: close" never returns its connection to the pool.
const freshConn = 20 * time.Millisecond

// peekPeriod is how long every reuse is peeked after a sign that the upstream closes
// connections within freshConn.
const peekPeriod = time.Minute

// get returns a connection to addr: an idle one that is still open, else a new one
// (waiting for a free slot when maxConns are open, until deadline).
func (c *fastClient) get(addr string, deadline time.Time) (*fastConn, error) {
	for {
		now := time.Now()
		c.mu.Lock()
		if c.aborted || c.closed {
			c.mu.Unlock()
			return nil, errFastClosed
		}
		h := c.hosts[addr]
		if h == nil {
			h = &hostConns{freed: make(chan struct{})}
			c.hosts[addr] = h
		}
		if n := len(h.idle); n > 0 {
			fc := h.idle[n-1]
			h.idle[n-1] = nil
			h.idle = h.idle[:n-1]
			c.inUse[fc] = struct{}{}
			// Under c.mu, so that abort's past deadline is never overwritten by this one.
			err := fc.nc.SetDeadline(deadline)
			fresh := now.Sub(fc.sentAt) < c.freshFor
			fc.unpeeked = fresh && now.After(c.peekUntil)
			c.mu.Unlock()
			if err == nil && (fc.unpeeked || fc.alive()) {
				return fc, nil
			}
			if fresh {
				c.peekFor(now) // the server closed a connection within freshConn
			}
			c.discard(fc)
			continue
		}
		if c.maxConns <= 0 || h.open < c.maxConns {
			h.open++
			c.mu.Unlock()
			fc, err := c.dial(addr, deadline)
			if err != nil {
				c.mu.Lock()
				c.closedOneLocked(h, addr)
				c.mu.Unlock()
				return nil, err
			}
			return fc, nil
		}
		h.waiters++
		freed := h.freed
		c.mu.Unlock()
		wait := time.NewTimer(time.Until(deadline))
		select {
		case <-freed:
		case <-wait.C:
		case <-c.base.Done():
		}
		wait.Stop()
		c.mu.Lock()
		h.waiters--
		c.mu.Unlock()
		if c.base.Err() != nil {
			return nil, errFastClosed
		}
		if !time.Now().Before(deadline) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{errFastNoConn}}
		}
	}
}

func (c *fastClient) dial(addr string, deadline time.Time) (*fastConn, error) {
	d := net.Dialer{Deadline: deadline, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(c.base, "tcp", addr)
	if err != nil {
		return nil, err
	}
	nc = rawtcp.Wrap(nc)
	fc := &fastConn{addr: addr, nc: nc, br: bufio.NewReaderSize(nc, 4096)}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			fc.rc = rc
			fc.raw.bind(fc)
		}
	}
	c.mu.Lock()
	if c.aborted || c.closed {
		c.closedOneLocked(c.hosts[addr], addr)
		c.mu.Unlock()
		_ = nc.Close()
		return nil, errFastClosed
	}
	c.inUse[fc] = struct{}{}
	// Under c.mu, so that abort's past deadline is never overwritten by this one.
	err = nc.SetDeadline(deadline)
	c.mu.Unlock()
	if err != nil {
		c.discard(fc)
		return nil, err
	}
	return fc, nil
}

// put returns a connection whose response was read to its end to the idle ones.
func (c *fastClient) put(fc *fastConn) {
	fc.idleSince = time.Now()
	c.mu.Lock()
	delete(c.inUse, fc)
	h := c.hosts[fc.addr]
	if c.aborted || c.closed || h == nil {
		c.mu.Unlock()
		c.closeConn(fc)
		return
	}
	h.idle = append(h.idle, fc)
	c.wakeLocked(h)
	start := c.reaper == nil
	if start {
		c.reaper = make(chan struct{})
	}
	stop := c.reaper
	c.mu.Unlock()
	if start {
		go c.reap(stop)
	}
}

// discard closes a connection that cannot be reused.
func (c *fastClient) discard(fc *fastConn) {
	_ = fc.nc.Close()
	c.mu.Lock()
	delete(c.inUse, fc)
	c.closedOneLocked(c.hosts[fc.addr], fc.addr)
	c.mu.Unlock()
}

// failed closes a connection whose call failed before its answer began. When that
// connection was reused without the peek and the failure was the network's (not a
// timeout), reuses are peeked for a while: it may have been a close within freshConn,
// which the peek would have noticed.
func (c *fastClient) failed(fc *fastConn, network bool) {
	if fc.unpeeked && network {
		c.peekFor(time.Now())
	}
	c.discard(fc)
}

// peekFor has every reuse peeked for peekPeriod from now.
func (c *fastClient) peekFor(now time.Time) {
	c.mu.Lock()
	c.peekUntil = now.Add(peekPeriod)
	c.mu.Unlock()
}

func (c *fastClient) closeConn(fc *fastConn) {
	_ = fc.nc.Close()
	c.mu.Lock()
	c.closedOneLocked(c.hosts[fc.addr], fc.addr)
	c.mu.Unlock()
}

func (c *fastClient) closedOneLocked(h *hostConns, addr string) {
	if h == nil {
		return
	}
	h.open--
	c.wakeLocked(h)
	if h.open == 0 && h.waiters == 0 {
		delete(c.hosts, addr) // rules may put {hub} in the host: keep only hosts in use
	}
}

func (c *fastClient) wakeLocked(h *hostConns) {
	if h.waiters > 0 {
		close(h.freed)
		h.freed = make(chan struct{})
	}
}

// reap closes connections idle for longer than idleTimeout, as net/http's
// IdleConnTimeout does, until the client is closed.
func (c *fastClient) reap(stop chan struct{}) {
	tick := time.NewTicker(c.idleTimeout / 2)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			var stale []*fastConn
			c.mu.Lock()
			for _, h := range c.hosts {
				n := 0
				for n < len(h.idle) && now.Sub(h.idle[n].idleSince) > c.idleTimeout {
					n++
				}
				if n > 0 {
					stale = append(stale, h.idle[:n]...)
					h.idle = slices.Delete(h.idle, 0, n)
				}
			}
			c.mu.Unlock()
			for _, fc := range stale {
				c.closeConn(fc)
			}
		}
	}
}

// abort ends the calls in flight (their reads and writes fail at once) and refuses new ones.
func (c *fastClient) abort() {
	c.mu.Lock()
	c.aborted = true
	for fc := range c.inUse {
		_ = fc.nc.SetDeadline(time.Unix(1, 0))
	}
	for _, h := range c.hosts {
		c.wakeLocked(h)
	}
	c.mu.Unlock()
}

// close closes the idle connections and stops the reaper; calls still in flight close
// their connections when they end.
func (c *fastClient) close() {
	c.mu.Lock()
	c.closed = true
	var idle []*fastConn
	for _, h := range c.hosts {
		idle = append(idle, h.idle...)
		h.idle = nil
	}
	if c.reaper != nil {
		close(c.reaper)
	}
	c.reaper = make(chan struct{}) // put starts no new reaper
	c.mu.Unlock()
	for _, fc := range idle {
		c.closeConn(fc)
	}
}

// post writes one request on fc (head ends with "Content-Length: "; the length and the
// body follow) and reads the answer; fc's deadline was set by get. A common answer comes
// back whole as a quickReply (resp is nil; see readQuickReply), for finishQuick; for
// any other, resp has its head, and the caller reads the body, then hands fc to finish.
func (fc *fastConn) post(head []byte, body []byte) (q quickReply, resp *http.Response, err error) {
	fc.buf = append(fc.buf[:0], head...)
	fc.buf = strconv.AppendInt(fc.buf, int64(len(body)), 10)
	fc.buf = append(fc.buf, "\r\n\r\n"...)
	if len(body) <= 32<<10 {
		fc.buf = append(fc.buf, body...)
	} else {
		fc.body = body
	}
	fc.sentAt = time.Now()
	err = fc.writeAndAwait()
	fc.body = nil
	if cap(fc.buf) > 64<<10 {
		fc.buf = nil // a large body's buffer is not kept with the idle connection
	}
	if err != nil {
		return q, nil, err
	}
	// One read, as http.ReadResponse's first would be; its error is that read's.
	if _, err := fc.br.Peek(1); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // as http.ReadResponse says it
		}
		return q, nil, err
	}
	if quick, ok := readQuickReply(fc.br); ok {
		return quick, nil, nil
	}
	for {
		resp, err := http.ReadResponse(fc.br, nil)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return q, nil, err
			}
			var ne net.Error
			if errors.As(err, &ne) {
				return q, nil, err
			}
			return q, nil, fmt.Errorf("%w: %w", errFastBadReply, err)
		}
		// 1xx interim answers (100 Continue, 103 Early Hints) precede the real one.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return q, resp, nil
	}
}

// write sends the request post prepared.
func (fc *fastConn) write() error {
	if fc.body == nil {
		_, err := fc.nc.Write(fc.buf)
		return err
	}
	bufs := net.Buffers{fc.buf, fc.body}
	_, err := bufs.WriteTo(fc.nc)
	return err
}

// finish makes fc ready for the next request if resp's body was read to its end and
// the server keeps the connection open; otherwise the connection is closed.
func (c *fastClient) finish(fc *fastConn, resp *http.Response) {
	var one [1]byte
	reusable := !resp.Close
	if reusable {
		_, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if err == nil {
			_, err = resp.Body.Read(one[:])
		}
		reusable = err == io.EOF && fc.br.Buffered() == 0
	}
	if !reusable {
		// Closed first: the body's Close reads whatever is left, which must fail at once.
		c.discard(fc)
		_ = resp.Body.Close()
		return
	}
	_ = resp.Body.Close()
	c.put(fc)
}

// finishQuick is finish for a quickReply whose body the caller has copied.
func (c *fastClient) finishQuick(fc *fastConn, q quickReply) {
	_, _ = fc.br.Discard(q.n) // all buffered: cannot fail
	if q.close || fc.br.Buffered() != 0 {
		c.discard(fc)
		return
	}
	c.put(fc)
}

// timeoutError marks an error as a timeout for errKind's net.Error check.
type timeoutError struct{ err error }

func (e timeoutError) Error() string   { return e.err.Error() }
func (e timeoutError) Unwrap() error   { return e.err }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }

// fastErrKind classifies a failure of the fast client as errKind does for net/http's.
func (u *Upstream) fastErrKind(err error) failKind {
	if u.isAborted() || errors.Is(err, errFastClosed) {
		return failShutdown
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failTimeout
	}
	return failNetwork
}
