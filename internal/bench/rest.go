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
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/httpwire"
	"github.com/signalbox-io/signalbox/management"
)

// restTokenLifetime is how long the REST scenario's tokens live; one is signed again
// when less than restTokenRenew of it is left (a run lasts minutes, so in practice
// each is signed once).
const (
	restTokenLifetime = time.Hour
	restTokenRenew    = 5 * time.Minute
)

// restTimeout bounds one send-to-user request (the management client's timeout in
// the other scenarios).
const restTimeout = 10 * time.Second

// restIdleMax is how long a keep-alive connection may sit unused before the caller
// dials a new one instead (the server closes idle connections after 120 s).
const restIdleMax = 60 * time.Second

// userSender posts send-to-user requests as an SDK that keeps its tokens does: one
// token per request path (the audience names the path, so each user has its own),
// signed once and reused until shortly before it expires, over keep-alive
// connections. The management client signs a new token per request, which on this
// shared 2-core machine cost the load generator as much CPU as the server spent on
// the request, and made every request a cache miss of the server's verified-token
// cache (a real caller's repeated token is a hit).
//
// Against a plain-HTTP endpoint it is a caller like wrk: each user's request head
// (request line, Host, Authorization, Content-Type) is rendered once per token, a
// request is that head, its Content-Length and the body written in one write on a
// keep-alive connection of its own, and the answer is read from a buffered reader
// without net/http: the status line, the headers it needs (Content-Length,
// Connection, x-ms-error-code) and the body when there is one. Every status is
// checked (202 is success, anything else an error with the status and the body);
// a connection whose answer cannot be delimited is closed. An https endpoint goes
// through net/http.
type userSender struct {
	hc       *http.Client
	endpoint string // no trailing '/'
	key      string
	hubPath  string // /api/hubs/{escaped lower-case hub}
	prefix   []byte // the body up to the arguments: {"target":...,"arguments":

	addr string // host:port to dial; "" = use hc (https)
	host string // the Host header

	mu     sync.Mutex
	tokens map[string]*restToken // by user
	idle   []*restConn           // keep-alive connections not in use
}

type restToken struct {
	bearer  string // "Bearer " + the token
	head    []byte // the request head up to the Content-Length value
	renewAt time.Time
}

// restConn is one keep-alive connection of the raw caller.
type restConn struct {
	nc       net.Conn
	br       *bufio.Reader
	buf      []byte // the request being written
	lastUsed time.Time
}

func newUserSender(hc *http.Client, endpoint, key, hub, target string) *userSender {
	t, _ := json.Marshal(target) // a string always encodes
	s := &userSender{
		hc: hc, endpoint: strings.TrimRight(endpoint, "/"), key: key,
		hubPath: "/api/hubs/" + url.PathEscape(strings.ToLower(hub)),
		prefix:  append(append([]byte(`{"target":`), t...), `,"arguments":`...),
		tokens:  make(map[string]*restToken),
	}
	if u, err := url.Parse(s.endpoint); err == nil && u.Scheme == "http" && u.Host != "" && (u.Path == "" || u.Path == "/") {
		s.host = u.Host
		s.addr = u.Host
		if u.Port() == "" {
			s.addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	return s
}

// path is the escaped request path of a send to user.
func (s *userSender) path(user string) string {
	return s.hubPath + "/users/" + url.PathEscape(user) + "/:send"
}

// token returns the token of user's send path, signing one (and rendering the
// request head) when there is none or it is about to expire.
func (s *userSender) token(user string) (*restToken, error) {
	now := time.Now()
	s.mu.Lock()
	t := s.tokens[user]
	s.mu.Unlock()
	if t != nil && now.Before(t.renewAt) {
		return t, nil
	}
	// The audience is what the management client signs: the path with its query.
	target := s.path(user) + "?api-version=" + management.APIVersion
	aud := auth.RESTAudience(s.endpoint, target)
	tok, err := auth.NewToken(s.key, auth.TokenOptions{Audience: aud, Lifetime: restTokenLifetime, Now: func() time.Time { return now }})
	if err != nil {
		return nil, fmt.Errorf("bench: signing a REST token: %w", err)
	}
	t = &restToken{bearer: "Bearer " + tok, renewAt: now.Add(restTokenLifetime - restTokenRenew)}
	t.head = []byte("POST " + target + " HTTP/1.1\r\nHost: " + s.host + "\r\nAuthorization: " + t.bearer +
		"\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ")
	s.mu.Lock()
	s.tokens[user] = t
	s.mu.Unlock()
	return t, nil
}

// send posts the target with args (a JSON array) to user and expects 202 Accepted.
// A refusal is a *management.ResponseError, as from the management client.
func (s *userSender) send(ctx context.Context, user string, args json.RawMessage) error {
	t, err := s.token(user)
	if err != nil {
		return err
	}
	if s.addr == "" {
		return s.sendHTTP(ctx, user, t, args)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := s.conn(ctx)
	if err != nil {
		return fmt.Errorf("bench: send to user: %w", err)
	}
	n := len(s.prefix) + len(args) + 1
	b := append(c.buf[:0], t.head...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, s.prefix...)
	b = append(b, args...)
	b = append(b, '}')
	c.buf = b
	status, keep, err := c.roundTrip(b)
	if err != nil {
		c.nc.Close()
		return fmt.Errorf("bench: send to user: %w", err)
	}
	if keep {
		s.release(c)
	} else {
		c.nc.Close()
	}
	if status.code != http.StatusAccepted {
		return &management.ResponseError{Method: http.MethodPost, URL: s.endpoint + s.path(user), StatusCode: status.code,
			ErrorCode: status.errorCode, Message: status.body}
	}
	return nil
}

// conn takes an idle keep-alive connection or dials one.
func (s *userSender) conn(ctx context.Context) (*restConn, error) {
	now := time.Now()
	s.mu.Lock()
	for n := len(s.idle); n > 0; n = len(s.idle) {
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		if now.Sub(c.lastUsed) < restIdleMax {
			s.mu.Unlock()
			return c, nil
		}
		c.nc.Close()
	}
	s.mu.Unlock()
	d := net.Dialer{Timeout: restTimeout}
	nc, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	return &restConn{nc: nc, br: bufio.NewReaderSize(nc, 4096)}, nil
}

func (s *userSender) release(c *restConn) {
	c.lastUsed = time.Now()
	s.mu.Lock()
	s.idle = append(s.idle, c)
	s.mu.Unlock()
}

// close closes the idle connections.
func (s *userSender) close() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// restStatus is what the raw caller reads of an answer.
type restStatus struct {
	code      int
	errorCode string // x-ms-error-code, on an error
	body      string // on an error, at most maxErrorBody bytes
}

// maxErrorBody bounds the body kept of an error answer; a longer one is not read
// and its connection is closed.
const maxErrorBody = 1024

var errBadResponse = errors.New("malformed HTTP response")

// roundTrip writes req and reads the answer; keep reports whether the connection
// can carry the next request.
func (c *restConn) roundTrip(req []byte) (st restStatus, keep bool, err error) {
	if err := c.nc.SetDeadline(time.Now().Add(restTimeout)); err != nil {
		return st, false, err
	}
	if _, err := c.nc.Write(req); err != nil {
		return st, false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return st, false, err
	}
	// HTTP/1.1 202 Accepted
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return st, false, errBadResponse
	}
	st.code, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return st, false, errBadResponse
	}
	keep = line[7] == '1' // HTTP/1.0 closes unless told otherwise; the server speaks 1.1
	length := int64(-1)
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return st, false, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return st, false, errBadResponse
		}
		value = bytes.TrimSpace(value)
		switch {
		case httpwire.EqualFold(name, "content-length"):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return st, false, errBadResponse
			}
		case httpwire.EqualFold(name, "transfer-encoding"):
			keep = false // chunked: not read; the connection is closed
		case httpwire.EqualFold(name, "connection"):
			if httpwire.EqualFold(value, "close") {
				keep = false
			}
		case httpwire.EqualFold(name, "x-ms-error-code") && st.code != http.StatusAccepted:
			st.errorCode = string(value)
		}
	}
	switch {
	case length == 0:
	case length > 0 && length <= maxErrorBody:
		body := make([]byte, length)
		if _, err := io.ReadFull(c.br, body); err != nil {
			return st, false, err
		}
		st.body = string(bytes.TrimSpace(body))
	default: // a body not read or not delimited
		keep = false
	}
	return st, keep, nil
}

// sendHTTP is send through net/http (an https endpoint).
func (s *userSender) sendHTTP(ctx context.Context, user string, t *restToken, args json.RawMessage) error {
	body := make([]byte, 0, len(s.prefix)+len(args)+1)
	body = append(append(append(body, s.prefix...), args...), '}')
	ctx, cancel := context.WithTimeout(ctx, restTimeout)
	defer cancel()
	u := s.endpoint + s.path(user) + "?api-version=" + management.APIVersion
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bench: send to user: %w", err)
	}
	req.Header["Authorization"] = []string{t.bearer}
	req.Header["Content-Type"] = []string{"application/json; charset=utf-8"}
	res, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("bench: send to user: %w", err)
	}
	// Read to the end so that the connection is reused.
	msg, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return &management.ResponseError{Method: http.MethodPost, URL: s.endpoint + s.path(user), StatusCode: res.StatusCode,
			ErrorCode: res.Header.Get("x-ms-error-code"), Message: string(bytes.TrimSpace(msg))}
	}
	return nil
}
