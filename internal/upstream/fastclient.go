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
// is noticed before it is reused (a non-blocking peek), not by retrying.
type fastClient struct {
	maxConns    int // per host; 0 = no limit
	idleTimeout time.Duration
	base        context.Context // ends dials when Close gives up

	mu      sync.Mutex
	hosts   map[string]*hostConns
	inUse   map[*fastConn]struct{} // aborted by Close
	aborted bool
	closed  bool
	reaper  chan struct{} // closed to stop the idle reaper; nil until one runs
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
	buf       []byte // the request being written
	body      []byte // the body being written after buf; nil when buf holds it
	idleSince time.Time
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

// get returns a connection to addr: an idle one that is still open, else a new one
// (waiting for a free slot when maxConns are open, until deadline).
func (c *fastClient) get(addr string, deadline time.Time) (*fastConn, error) {
	for {
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
			c.mu.Unlock()
			if err == nil && fc.alive() {
				return fc, nil
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
// body follow) and reads the response head; fc's deadline was set by get. The caller
// reads the body, then hands fc to finish.
func (fc *fastConn) post(head []byte, body []byte) (*http.Response, error) {
	fc.buf = append(fc.buf[:0], head...)
	fc.buf = strconv.AppendInt(fc.buf, int64(len(body)), 10)
	fc.buf = append(fc.buf, "\r\n\r\n"...)
	if len(body) <= 32<<10 {
		fc.buf = append(fc.buf, body...)
	} else {
		fc.body = body
	}
	err := fc.writeAndAwait()
	fc.body = nil
	if cap(fc.buf) > 64<<10 {
		fc.buf = nil // a large body's buffer is not kept with the idle connection
	}
	if err != nil {
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(fc.br, nil)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, err
			}
			var ne net.Error
			if errors.As(err, &ne) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errFastBadReply, err)
		}
		// 1xx interim answers (100 Continue, 103 Early Hints) precede the real one.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return resp, nil
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
