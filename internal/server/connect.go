package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unique"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/transport"
)

// newConn registers a connection that no transport has attached to yet. It returns
// nil with an HTTP status and message when the server cannot take it.
func (s *Server) newConn(hubName string, p *auth.Principal, accessToken, addr string, negotiateVersion int) (*conn, int, string) {
	c := &conn{
		tokenSum: sha256.Sum256([]byte(accessToken)),
		addr:     addr,
		s:        s,
		id:       newID(),
		// Interned: a hub name cut from the request would pin the request line (or
		// header) it came from for the connection's life.
		hubName: unique.Make(hubName).Value(),
		user:    p.UserID,
		out:     transport.NewOutbox(s.cfg.SendQueueFrames, s.cfg.SendQueueBytes, s.budget),
	}
	if !p.Expires.IsZero() {
		c.tokenExp = p.Expires.UnixNano()
	}
	if set := settingsFromClaims(p.Claims); set != (tokenSettings{}) {
		c.set = &set
	}
	if s.upstream != nil {
		// Only the upstream reads them; without one they would be kept for nothing.
		// upstream.Open picks the user claims; filtering here too dropped renamed ones.
		c.up = &connUpstream{claims: p.Claims}
	}
	c.token = c.id
	if negotiateVersion >= 1 {
		c.token = s.connectionToken()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return nil, http.StatusServiceUnavailable, "The server is shutting down."
	}
	if s.cfg.MaxConnections > 0 && len(s.conns) >= s.cfg.MaxConnections {
		return nil, http.StatusTooManyRequests, "The connection limit of the server has been reached."
	}
	cfg := s.limits()
	if le := s.adm.admit(addr, c.userKey(), cfg.MaxConnectionsPerAddress, cfg.MaxConnectionsPerUser, cfg.MaxPendingNegotiations); le != nil {
		s.log.Info("connection refused: limit reached", slog.String("hub", hubName), slog.String("address", addr), slog.String("reason", le.text))
		return nil, le.status, le.text
	}
	s.conns[c.token] = c
	s.connsTotal.Add(1)
	c.mu.Lock()
	s.sweep.arm(c, time.Now().Add(s.cfg.NegotiateTimeout).UnixNano()) // see onTimer
	c.mu.Unlock()
	return c, 0, ""
}

// usableBy reports whether a request presenting accessToken (valid, of userID) may
// use c: the token that negotiated it may, and so may any token of the same user when
// the connection has one. An anonymous connection is bound to its token alone: the
// connection id is public (REST API, upstream) and, under negotiate v0, is also the
// id= value, so "same user" would let any anonymous token take the connection over.
func (c *conn) usableBy(accessToken, userID string) bool {
	if c.user != "" && userID == c.user {
		return true
	}
	sum := sha256.Sum256([]byte(accessToken))
	return userID == c.user && subtle.ConstantTimeCompare(sum[:], c.tokenSum[:]) == 1
}

// heldBy reports whether accessToken is the very token that created c and has not
// expired. Such a request needs no new signature check: the token was verified when it
// created the connection, and checking it again against the keys configured now would
// end long-polling and SSE connections at a key rotation, which WebSocket connections
// (checked once, at the upgrade) survive. Expiry is still enforced.
func (c *conn) heldBy(accessToken string, now time.Time) bool {
	if c.tokenExp == 0 || !now.Before(time.Unix(0, c.tokenExp).Add(auth.DefaultClockSkew)) {
		return false
	}
	sum := sha256.Sum256([]byte(accessToken))
	return subtle.ConstantTimeCompare(sum[:], c.tokenSum[:]) == 1
}

// expire discards a negotiated connection no transport attached to in time.
func (c *conn) expire() {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return
	}
	c.expired = true
	c.mu.Unlock()
	c.out.Seal(nil)
	c.s.remove(c)
}

func (s *Server) lookup(token string) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[token]
}

func (s *Server) remove(c *conn) {
	c.mu.Lock()
	s.sweep.disarm(c)
	c.mu.Unlock()
	s.mu.Lock()
	if s.conns[c.token] == c {
		delete(s.conns, c.token)
		c.mu.Lock()
		started := c.started
		c.mu.Unlock()
		s.adm.release(c.addr, c.userKey(), !started)
	}
	s.mu.Unlock()
}

// attach binds a transport to c. first reports that this request started the
// connection; the caller then owns one count of s.wg and must call finish. On
// failure it returns an HTTP status and message.
func (s *Server) attach(c *conn, kind transport.Kind, query string) (first bool, status int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.expired:
		return false, http.StatusNotFound, "No Connection with that ID"
	case !c.settings().allows(kind):
		return false, http.StatusNotFound, kind.String() + " is not enabled for this connection."
	case c.kind == transport.None:
		if s.draining {
			return false, http.StatusServiceUnavailable, "The server is shutting down."
		}
		now := time.Now()
		c.kind, c.started, c.startedAt = kind, true, now.UnixNano()
		if c.up != nil {
			c.up.query = query
		}
		if kind == transport.LongPolling {
			c.poller = new(transport.Poller)
		}
		s.adm.started()
		c.isWS.Store(kind == transport.WebSockets)
		c.lastRecv.Store(now.UnixNano())
		c.lastSend.Store(now.UnixNano())
		s.sweep.disarm(c) // the negotiate timeout; startTimer arms the transport's
		s.wg.Add(1)
		return true, 0, ""
	case c.kind != kind:
		return false, http.StatusBadRequest, "Cannot change transports mid-connection"
	case kind == transport.LongPolling:
		return false, 0, ""
	default:
		return false, http.StatusConflict, "Connection already has an active " + kind.String() + " transport."
	}
}

// upstreamQueryOf is upstreamQuery of r for a connection that has an upstream, and ""
// (without splitting the query) for one that has none.
func (c *conn) upstreamQueryOf(r *http.Request) string {
	if c.up == nil {
		return ""
	}
	return upstreamQuery(r.URL.RawQuery)
}

// upstreamQuery is the connect query forwarded upstream: the secrets (access_token,
// and id, which holds the connection token) are removed.
func upstreamQuery(raw string) string {
	var kept []string
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, _, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if strings.EqualFold(k, "access_token") || strings.EqualFold(k, "id") {
			continue
		}
		kept = append(kept, part)
	}
	if len(kept) == 0 {
		return ""
	}
	return "?" + strings.Join(kept, "&")
}

// connect serves /client/?hub=...&id=...: the three transports, sends and DELETE.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	isWS := transport.IsWebSocketUpgrade(r)
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		textError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	q := r.URL.RawQuery
	hubs := queryValues(q, "hub")
	if len(hubs) > 1 {
		textError(w, http.StatusBadRequest, "The 'hub' query parameter must be given only once.")
		return
	}
	ids := queryValues(q, "id")
	if len(ids) == 0 || ids[0] == "" {
		if !isWS || r.Method != http.MethodGet {
			textError(w, http.StatusBadRequest, "Connection ID required")
			return
		}
		// A WebSocket without id is a new connection (the client skipped negotiate).
		if !s.allowNegotiate(w, r) {
			return
		}
		hubName, status, msg := s.hubFromQuery(q)
		if status != 0 {
			textError(w, status, msg)
			return
		}
		p, ok := s.authorize(w, r, hubName)
		if !ok {
			return
		}
		c, status, msg := s.newConn(hubName, p, auth.TokenFromRequest(r), s.clientAddr(r), 0)
		if c == nil {
			textError(w, status, msg)
			return
		}
		s.serveWebSocket(w, r, c)
		return
	}
	c := s.lookup(ids[0])
	if c == nil {
		if s.forward(w, r, ids[0]) {
			return
		}
		textError(w, http.StatusNotFound, "No Connection with that ID")
		return
	}
	if len(hubs) == 1 && !strings.EqualFold(hubs[0], c.hubName) {
		textError(w, http.StatusNotFound, "No Connection with that ID")
		return
	}
	if tok := auth.TokenFromRequest(r); !c.heldBy(tok, time.Now()) {
		p, ok := s.authorize(w, r, c.hubName)
		if !ok {
			return
		}
		if !c.usableBy(tok, p.UserID) {
			textError(w, http.StatusForbidden, "The access token is not the one the connection was negotiated with.")
			return
		}
	}
	switch {
	case isWS && r.Method == http.MethodGet:
		s.serveWebSocket(w, r, c)
	case r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
		s.serveSSE(w, r, c)
	case r.Method == http.MethodGet:
		s.serveLongPoll(w, r, c)
	case r.Method == http.MethodPost:
		s.serveSend(w, r, c)
	default:
		s.serveDelete(w, c)
	}
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, c *conn) {
	if sr := c.sr.Load(); sr != nil {
		s.resumeWebSocket(w, r, c, sr)
		return
	}
	first, status, msg := s.attach(c, transport.WebSockets, c.upstreamQueryOf(r))
	if !first {
		textError(w, status, msg)
		return
	}
	ws, err := s.loop.Accept(w, r, (*wsEvents)(c))
	if err != nil {
		// Accept has answered the request.
		s.log.Debug("websocket upgrade failed", slog.String("connectionId", c.id), slog.Any("error", err))
		c.abort("WebSocket upgrade failed.")
		c.finish()
		s.wg.Done()
		return
	}
	c.mu.Lock()
	c.ws = ws
	c.mu.Unlock()
	c.startCleanup() // terminated while upgrading
	c.startTimer()
	c.kick() // anything queued during the upgrade (a drain's Close)
	// The handler returns: no goroutine stays with the connection. The event loop
	// reads when the socket has bytes; the writer runs while frames are queued; the
	// lifecycle timer is a runtime timer.
	ws.Start()
}

// wsEvents receives a WebSocket connection's events (transport.Handler).
type wsEvents conn

// Data implements transport.Handler.
func (e *wsEvents) Data(chunk []byte, _ bool) error { return (*conn)(e).receive(chunk) }

// Closed implements transport.Handler: the socket is closed.
func (e *wsEvents) Closed(err error) { (*conn)(e).wsClosed(0, err) }

func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, c *conn) {
	first, status, msg := s.attach(c, transport.ServerSentEvents, c.upstreamQueryOf(r))
	if !first {
		textError(w, status, msg)
		return
	}
	defer s.wg.Done()
	defer c.finish()
	sse, err := transport.StartSSE(w, s.cfg.WriteTimeout)
	if err != nil {
		c.abort("The event stream could not be started.")
		return
	}
	c.startTimer()
	// The response only lives as long as this handler, so this goroutine is the writer.
	var spare []byte
	stop := c.stopChan()
	for {
		select {
		case <-c.out.Ready():
			batch, sealed := c.out.Take(spare)
			if err := sse.Write(batch); err != nil {
				c.abort("The transport failed: " + err.Error())
				return
			}
			if sealed {
				c.terminate("")
				return
			}
			spare = batch[:0]
			if cap(spare) > 16<<10 {
				spare = nil
			}
		case <-stop:
			return
		case <-r.Context().Done():
			c.terminate("") // the client closes an event stream by dropping it
			return
		}
	}
}

func (s *Server) serveLongPoll(w http.ResponseWriter, r *http.Request, c *conn) {
	first, status, msg := s.attach(c, transport.LongPolling, c.upstreamQueryOf(r))
	if status != 0 {
		textError(w, status, msg)
		return
	}
	if first {
		// Between polls the connection has no goroutine: its timer watches it and
		// terminate cleans it up (releasing attach's count of s.wg).
		c.startTimer()
		// The transport's own handshake: the client requires an immediate empty 200.
		_ = transport.WritePoll(w, nil)
		return
	}
	c.mu.Lock()
	poller := c.poller
	c.mu.Unlock()
	pl := poller.Begin()
	defer func() { pl.End(time.Now()) }()
	pollTimeout := s.cfg.PollTimeout
	if t := c.settings().pollTimeout; t > 0 && t < pollTimeout {
		pollTimeout = t
	}
	timer := time.NewTimer(pollTimeout)
	defer timer.Stop()
	stop := c.stopChan()
	noContent := func() {
		transport.SetNoCacheHeaders(w.Header())
		w.WriteHeader(http.StatusNoContent)
	}
	for {
		if batch, sealed := c.out.Take(nil); len(batch) > 0 || sealed {
			if len(batch) == 0 {
				noContent()
			} else {
				// A client that polls but does not read holds this handler (and the
				// connection, which counts a pending poll as activity) forever otherwise.
				_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
				if err := transport.WritePoll(w, batch); err != nil {
					c.abort("The transport failed: " + err.Error()) // the batch is lost: end the connection
					return
				}
			}
			if sealed {
				c.terminate("")
			}
			return
		}
		select {
		case <-c.out.Ready():
		case <-pl.Replaced():
			noContent()
			return
		case <-stop:
			noContent()
			return
		case <-timer.C:
			_ = transport.WritePoll(w, nil)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) serveSend(w http.ResponseWriter, r *http.Request, c *conn) {
	c.mu.Lock()
	kind := c.kind
	c.mu.Unlock()
	if kind == transport.WebSockets {
		textError(w, http.StatusMethodNotAllowed, "POST requests are not allowed for WebSocket connections.")
		return
	}
	if kind == transport.None {
		// Processing input would register the connection in the hub with no transport
		// whose end could ever remove it again.
		textError(w, http.StatusBadRequest, "The connection has no transport yet: start one before sending.")
		return
	}
	if !c.postBusy.CompareAndSwap(false, true) {
		textError(w, http.StatusConflict, "Another send request is already in progress.")
		return
	}
	defer c.postBusy.Store(false)
	// A client trickling its body must not hold the request forever.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.ClientTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxMessageSize)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			textError(w, http.StatusRequestEntityTooLarge, "The request body exceeds the maximum message size.")
			return
		}
		textError(w, http.StatusBadRequest, "The request body could not be read.")
		return
	}
	if c.stopped() {
		textError(w, http.StatusNotFound, "No Connection with that ID")
		return
	}
	if err := c.receive(body); errors.Is(err, errGone) {
		textError(w, http.StatusNotFound, "No Connection with that ID")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) serveDelete(w http.ResponseWriter, c *conn) {
	c.mu.Lock()
	kind := c.kind
	c.mu.Unlock()
	if kind != transport.LongPolling {
		textError(w, http.StatusBadRequest, "Cannot terminate this connection using the DELETE endpoint.")
		return
	}
	c.terminate("")
	w.WriteHeader(http.StatusAccepted)
}
