package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/internal/jsonscan"
)

// rawConnector makes the connect scenario's clients: each one a full SignalR connect
// as the JavaScript client makes it, negotiate (POST .../negotiate?...&negotiateVersion=1
// with the access token, following {url, accessToken} redirects), then the WebSocket
// upgrade with id= and access_token= in the query, then the JSON handshake, waiting
// for its answer. Every status code, the upgrade's Sec-WebSocket-Accept and the
// handshake answer are checked. It is written against sockets because client.Dial
// through net/http and coder/websocket cost the load generator about four times the
// server's CPU per connect (perf record of a worker during the 19,000 storm:
// http.Transport's connection goroutines, coder/websocket's reader, a goroutine and a
// timer per client). Requests are rendered into reused buffers; each dialer keeps one
// keep-alive connection for its negotiate requests between its clients, as a browser
// keeps one per origin. Safe for concurrent use.
type rawConnector struct {
	idle    chan *rawDialer       // the dialers' state between two clients
	targets map[string]*rawTarget // by hub URL, made before the clock starts
	// src spreads the connections over loopback addresses (sourceDialers); a single
	// dialer without a local address when nil.
	src   []net.Dialer
	next  atomic.Uint32
	plain net.Dialer // without src
}

// rawTarget is what the requests to one hub URL need, rendered once.
type rawTarget struct {
	host      string // the Host header
	addr      string // host:port to dial
	negotiate string // request URI of negotiate
	connect   string // request URI of the WebSocket, without id and access_token
}

// rawIdleDialers bounds the dialers whose negotiate connection is kept between phases:
// more than any phase uses (stormDialers, ConnectConcurrency's limit).
const rawIdleDialers = 4096

// rawConnBuffer is a connect client's read buffer: it reads the upgrade's answer and
// then only pings and a close.
const rawConnBuffer = 1024

// maxRawRedirects is how many negotiate redirects a connect follows (the clients' 100).
const maxRawRedirects = 100

// maxNegotiateBody bounds a negotiate answer, as the clients do.
const maxNegotiateBody = 1 << 20

// newRawConnector prepares the connects to hubURLs (auth.ClientURL of each endpoint).
func newRawConnector(hubURLs []string) (*rawConnector, error) {
	r := &rawConnector{idle: make(chan *rawDialer, rawIdleDialers), targets: make(map[string]*rawTarget, len(hubURLs)),
		plain: net.Dialer{KeepAlive: -1}} // the hub pings every 15 s; TCP keep-alive adds nothing
	for _, u := range hubURLs {
		t, err := newRawTarget(u)
		if err != nil {
			return nil, err
		}
		r.targets[u] = t
		if r.src == nil {
			r.src = sourceDialers(t.addr)
		}
	}
	return r, nil
}

// newRawTarget renders the requests of base (a hub URL, or a redirect's url) as
// client.negotiateURL and client.connectURL build them.
func newRawTarget(base string) (*rawTarget, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("bench: connect: invalid URL %q: %w", base, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("bench: connect: the raw client speaks http:// only, not %q", base)
	}
	t := &rawTarget{host: u.Host, addr: u.Host, connect: u.RequestURI()}
	if u.Port() == "" {
		t.addr = net.JoinHostPort(u.Hostname(), "80")
	}
	n := *u
	if strings.HasSuffix(n.Path, "/") {
		n.Path += "negotiate"
	} else {
		n.Path += "/negotiate"
	}
	n.RawPath = ""
	q := n.Query()
	if !q.Has("negotiateVersion") {
		q.Set("negotiateVersion", "1")
	}
	n.RawQuery = q.Encode()
	t.negotiate = n.RequestURI()
	return t, nil
}

// dial opens a TCP connection to addr, from the next source address.
func (r *rawConnector) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := &r.plain
	if len(r.src) > 0 {
		d = &r.src[int(r.next.Add(1))%len(r.src)]
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: connect: %w", err)
	}
	return nc, nil
}

// connect makes one full connect to hubURL with token, for user.
func (r *rawConnector) connect(ctx context.Context, hubURL, token, user string) (*rawClient, error) {
	d := r.get()
	defer r.put(d)
	t := r.targets[hubURL]
	if t == nil {
		var err error
		if t, err = newRawTarget(hubURL); err != nil {
			return nil, err
		}
	}
	var id []byte
	for redirects := 0; ; redirects++ {
		if redirects > maxRawRedirects {
			return nil, fmt.Errorf("bench: negotiate: more than %d redirects", maxRawRedirects)
		}
		body, err := d.negotiate(ctx, r, t, token)
		if err != nil {
			return nil, err
		}
		n, err := parseNegotiate(body)
		if err != nil {
			return nil, err
		}
		if n.url == "" {
			id = n.id
			break
		}
		if t, err = newRawTarget(n.url); err != nil {
			return nil, err
		}
		token = n.accessToken
	}

	nc, err := r.dial(ctx, t.addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c := newRawClient(nc, user, rawConnBuffer)
	// As the JavaScript client: the connection token as id=, the access token as
	// access_token= (a browser's WebSocket cannot send an Authorization header).
	d.target = append(d.target[:0], t.connect...)
	if strings.IndexByte(t.connect, '?') < 0 {
		d.target = append(d.target, '?')
	} else {
		d.target = append(d.target, '&')
	}
	d.target = appendQueryValue(append(d.target, "id="...), id)
	if token != "" {
		d.target = appendQueryValue(append(d.target, "&access_token="...), []byte(token))
	}
	var key [wsKeyLen]byte
	newWebSocketKey(&key)
	d.req = appendUpgradeRequest(d.req[:0], d.target, t.host, key[:], "")
	if err := c.open(d.req, key[:]); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// appendQueryValue appends v escaped as url.QueryEscape escapes it; connection and
// access tokens (base64url, JWTs) need no escaping, so that is the fast path.
func appendQueryValue(b, v []byte) []byte {
	for _, c := range v {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return append(b, url.QueryEscape(string(v))...)
		}
	}
	return append(b, v...)
}

func (r *rawConnector) get() *rawDialer {
	select {
	case d := <-r.idle:
		return d
	default:
		return &rawDialer{conns: make(map[string]*negConn, 1)}
	}
}

func (r *rawConnector) put(d *rawDialer) {
	select {
	case r.idle <- d:
	default:
		d.close()
	}
}

// close closes the idle dialers' negotiate connections.
func (r *rawConnector) close() {
	for {
		select {
		case d := <-r.idle:
			d.close()
		default:
			return
		}
	}
}

// rawDialer is one dialer's state: its keep-alive negotiate connections (by host: one
// unless negotiate redirects) and its buffers.
type rawDialer struct {
	conns  map[string]*negConn
	req    []byte
	target []byte
	body   []byte
}

func (d *rawDialer) close() {
	for h, c := range d.conns {
		c.nc.Close()
		delete(d.conns, h)
	}
}

// negConn is a keep-alive HTTP/1.1 connection.
type negConn struct {
	nc net.Conn
	br *bufio.Reader
}

// errStale is a kept connection the server had closed: nothing of an answer came.
var errStale = errors.New("bench: the server closed the keep-alive connection")

// negotiate POSTs the negotiate request of t with token and returns the answer's
// body (valid until the dialer's next request), which must come with 200.
func (d *rawDialer) negotiate(ctx context.Context, r *rawConnector, t *rawTarget, token string) ([]byte, error) {
	d.req = append(d.req[:0], "POST "...)
	d.req = append(d.req, t.negotiate...)
	d.req = append(d.req, " HTTP/1.1\r\nHost: "...)
	d.req = append(d.req, t.host...)
	if token != "" {
		d.req = append(d.req, "\r\nAuthorization: Bearer "...)
		d.req = append(d.req, token...)
	}
	d.req = append(d.req, "\r\nContent-Length: 0\r\n\r\n"...)
	for {
		c, kept := d.conns[t.host], true
		if c == nil {
			nc, err := r.dial(ctx, t.addr)
			if err != nil {
				return nil, err
			}
			c, kept = &negConn{nc: nc, br: bufio.NewReaderSize(nc, 4096)}, false
			d.conns[t.host] = c
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = c.nc.SetDeadline(dl)
		}
		status, body, keep, err := c.roundTrip(d.req, d.body[:0])
		if body != nil {
			d.body = body
		}
		if err != nil || !keep {
			c.nc.Close()
			delete(d.conns, t.host)
		}
		if err != nil {
			if kept && errors.Is(err, errStale) {
				continue // once: the next connection is a new one
			}
			return nil, fmt.Errorf("bench: negotiate: %w", err)
		}
		if status != 200 {
			return nil, fmt.Errorf("bench: negotiate: HTTP %d: %s", status, trimmed(body))
		}
		return body, nil
	}
}

// trimmed is the start of an error answer's body, for the message.
func trimmed(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// roundTrip writes req and reads the answer's status and body (into body[:0]); keep
// is false when the connection cannot carry another request.
func (c *negConn) roundTrip(req, body []byte) (status int, _ []byte, keep bool, err error) {
	if err := writeAwait(c.nc, c.br, req); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil, false, err
		}
		return 0, nil, false, fmt.Errorf("%w: %w", errStale, err)
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 {
			err = fmt.Errorf("%w: %w", errStale, err)
		}
		return 0, nil, false, err
	}
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	if len(rest) < 3 || !bytes.HasPrefix(proto, []byte("HTTP/1.")) {
		return 0, nil, false, fmt.Errorf("malformed status line %q", line)
	}
	code, err := strconv.Atoi(string(rest[:3]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("malformed status line %q", line)
	}
	keep = string(proto) == "HTTP/1.1"
	length, chunked := -1, false
	if err := readHeader(c.br, func(name, value []byte) error {
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			var err error
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return fmt.Errorf("malformed Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = headerHasToken(value, "chunked")
		case bytes.EqualFold(name, []byte("Connection")):
			if headerHasToken(value, "close") {
				keep = false
			}
		}
		return nil
	}); err != nil {
		return 0, nil, false, err
	}
	switch {
	case chunked:
		body, err = c.readChunked(body)
	case length > maxNegotiateBody:
		return 0, nil, false, fmt.Errorf("answer of %d bytes, more than 1 MiB", length)
	case length >= 0:
		body = append(body, make([]byte, length)...)
		_, err = io.ReadFull(c.br, body[len(body)-length:])
	case code == 204 || code == 304:
	default: // until the server closes
		keep = false
		body, err = readAllLimited(c.br, body)
	}
	if err != nil {
		return 0, nil, false, err
	}
	return code, body, keep, nil
}

// readChunked reads a chunked body (RFC 9112 section 7.1) into body.
func (c *negConn) readChunked(body []byte) ([]byte, error) {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return body, err
		}
		size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 32)
		if err != nil || n < 0 || len(body)+int(n) > maxNegotiateBody {
			return body, fmt.Errorf("bad chunk size %q", size)
		}
		if n == 0 {
			for { // trailers, up to the empty line
				line, err = c.br.ReadSlice('\n')
				if err != nil {
					return body, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return body, nil
				}
			}
		}
		body = append(body, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, body[len(body)-int(n):]); err != nil {
			return body, err
		}
		if line, err = c.br.ReadSlice('\n'); err != nil || len(bytes.TrimRight(line, "\r\n")) != 0 {
			return body, fmt.Errorf("chunk not followed by CRLF: %v", err)
		}
	}
}

// readAllLimited reads r to its end into body, at most maxNegotiateBody bytes.
func readAllLimited(r io.Reader, body []byte) ([]byte, error) {
	b := bytes.NewBuffer(body)
	n, err := b.ReadFrom(io.LimitReader(r, maxNegotiateBody+1))
	if err == nil && n > maxNegotiateBody {
		err = errors.New("answer larger than 1 MiB")
	}
	return b.Bytes(), err
}

// negotiated is what a negotiate answer says: a redirect (url, accessToken) or the
// connection's id= value.
type negotiated struct {
	url, accessToken string
	id               []byte // a slice of the body
}

// parseNegotiate reads a negotiate answer as the clients do (client's
// parseNegotiateResponse and supports): an error fails; a url is a redirect to an
// http(s) URL; otherwise a connectionId, with a connectionToken from version 1 on,
// and WebSockets with the Text format among the transports.
func parseNegotiate(body []byte) (negotiated, error) {
	var n negotiated
	if !json.Valid(body) {
		return n, fmt.Errorf("bench: negotiate: invalid answer %q", trimmed(body))
	}
	var errText string
	var connID, connToken []byte
	var version int64
	var ws, bad bool
	ok := jsonscan.Members(body, func(name, value []byte) {
		switch string(name) {
		case `"url"`:
			n.url, bad = jsonString(value, bad)
		case `"accessToken"`:
			n.accessToken, bad = jsonString(value, bad)
		case `"error"`:
			errText, bad = jsonString(value, bad)
		case `"connectionId"`:
			connID, bad = jsonBytes(value, bad)
		case `"connectionToken"`:
			connToken, bad = jsonBytes(value, bad)
		case `"negotiateVersion"`:
			version, _ = strconv.ParseInt(string(value), 10, 64)
		case `"availableTransports"`:
			ws = offersWebSocketsText(value)
		}
	})
	switch {
	case !ok || bad:
		return n, fmt.Errorf("bench: negotiate: invalid answer %q", trimmed(body))
	case errText != "":
		return n, fmt.Errorf("bench: negotiate: server error: %s", errText)
	case n.url != "":
		u, err := url.Parse(n.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return n, fmt.Errorf("bench: negotiate: redirect to an invalid URL %q", n.url)
		}
		return n, nil
	case len(connID) == 0:
		return n, errors.New("bench: negotiate: answer has neither url nor connectionId")
	case version >= 1 && len(connToken) == 0:
		return n, errors.New("bench: negotiate: version 1 answer without connectionToken")
	case !ws:
		return n, errors.New("bench: negotiate: the server does not offer WebSockets with the Text format")
	}
	n.id = connID
	if version >= 1 {
		n.id = connToken
	}
	return n, nil
}

// stringValue is the text of a JSON string without escapes, as it stands in the
// body; nil for anything else (null, a number, a string with escapes).
func stringValue(v []byte) []byte {
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return nil
	}
	return v[1 : len(v)-1]
}

// jsonString decodes a JSON string or null (""); bad is set when v is neither.
func jsonString(v []byte, bad bool) (string, bool) {
	if s := stringValue(v); s != nil {
		return string(s), bad
	}
	var s *string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", true
	}
	if s == nil {
		return "", bad
	}
	return *s, bad
}

// jsonBytes is jsonString without a copy when v has no escapes (ids and tokens have
// none).
func jsonBytes(v []byte, bad bool) ([]byte, bool) {
	if s := stringValue(v); s != nil {
		return s, bad
	}
	s, bad := jsonString(v, bad)
	return []byte(s), bad
}

// offersWebSocketsText reports whether an availableTransports array has WebSockets
// with the Text transfer format.
func offersWebSocketsText(arr []byte) bool {
	elems, _ := jsonscan.Elements(arr)
	for _, e := range elems {
		var name, formats []byte
		jsonscan.Members(e, func(k, v []byte) {
			switch string(k) {
			case `"transport"`:
				name = v
			case `"transferFormats"`:
				formats = v
			}
		})
		if string(name) != `"WebSockets"` {
			continue
		}
		fs, _ := jsonscan.Elements(formats)
		for _, f := range fs {
			if string(f) == `"Text"` {
				return true
			}
		}
	}
	return false
}
