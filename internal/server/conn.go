package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/internal/upstream"
	"github.com/signalbox-io/signalbox/protocol"
)

// maxHandshakeSize bounds the bytes buffered while waiting for the handshake's 0x1E.
const maxHandshakeSize = 4096

// defaultLPCloseGrace bounds how long a long-polling connection that was told to close
// waits for a poll to pick up its Close message.
const defaultLPCloseGrace = 5 * time.Second

var (
	// errInputClosed tells a reader to stop: the connection is closing.
	errInputClosed = errors.New("connection is closing")
	// errGone means the connection ended before the bytes arrived.
	errGone = errors.New("connection is gone")
)

// conn is one client connection: it implements hub.Client. Its lifecycle: created by
// negotiate (or a WebSocket request without id), started when a transport attaches,
// closing when its outbox is sealed (a Close message is the last frame), ended when
// stop is closed, finished after cleanup.
type conn struct {
	s       *Server
	id      string // public connection id (REST API, upstream)
	token   string // the secret id= value; equals id for negotiate v0
	hubName string // lower-cased
	user    string
	claims  []auth.Claim
	out     *transport.Outbox

	mu        sync.Mutex
	kind      transport.Kind
	started   bool
	expired   bool // discarded before any transport attached
	expiry    *time.Timer
	startedAt time.Time
	sealedAt  time.Time
	query     string // connect query forwarded upstream
	reason    string // why the connection ended; "" = clean
	reasonSet bool
	broken    bool // the transport failed; do not attempt a closing handshake

	stop     chan struct{} // closed by terminate: the transport must end now
	stopOnce sync.Once
	wake     chan struct{} // capacity 1: the loop must recompute its timer

	postBusy atomic.Bool
	poller   transport.Poller
	binary   atomic.Bool // frames are written as binary WebSocket messages
	lastRecv atomic.Int64
	lastSend atomic.Int64

	inMu      sync.Mutex // serializes inbound processing
	inClosed  bool
	hsBuf     []byte
	dec       *protocol.Decoder
	session   *upstream.Session
	pingFrame []byte

	handshaken atomic.Bool
	proto      protocol.Protocol // set once before handshaken is stored
}

// ID, Hub, UserID and Protocol implement hub.Client.
func (c *conn) ID() string                  { return c.id }
func (c *conn) Hub() string                 { return c.hubName }
func (c *conn) UserID() string              { return c.user }
func (c *conn) Protocol() protocol.Protocol { return c.proto }

// Send queues a frame without blocking. A full queue closes the connection as a slow
// consumer: one stalled client never holds up a broadcast.
func (c *conn) Send(frame []byte) bool {
	if c.out.Push(frame) {
		c.lastSend.Store(time.Now().UnixNano())
		return true
	}
	if c.out.Sealed() {
		return false
	}
	c.s.slowConsumers.Add(1)
	c.s.log.Warn("closing slow consumer", slog.String("hub", c.hubName), slog.String("connectionId", c.id))
	c.closeWithError("slow consumer")
	return false
}

// Close queues a Close message as the connection's last frame; the transport ends
// once it is written.
func (c *conn) Close(reason string, allowReconnect bool) {
	var final []byte
	if c.handshaken.Load() {
		f, err := c.proto.AppendFrame(nil, &protocol.Close{Error: reason, AllowReconnect: allowReconnect})
		if err == nil {
			final = f
		}
	}
	if !c.out.Seal(final) {
		return
	}
	c.mu.Lock()
	c.sealedAt = time.Now()
	started := c.started
	c.expired = c.expired || !started
	c.mu.Unlock()
	c.poke()
	if !started {
		c.s.remove(c)
	}
}

// poke wakes the lifecycle loop so that it recomputes its next deadline.
func (c *conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeWithError closes with reason and records it as the disconnect error.
func (c *conn) closeWithError(reason string) {
	c.setReason(reason)
	c.Close(reason, false)
}

func (c *conn) setReason(reason string) {
	c.mu.Lock()
	if !c.reasonSet {
		c.reason, c.reasonSet = reason, true
	}
	c.mu.Unlock()
}

// terminate ends the transport now, without a Close message.
func (c *conn) terminate(reason string) {
	c.setReason(reason)
	c.stopOnce.Do(func() { close(c.stop) })
}

// abort is terminate for a broken transport: nothing more can be written to it.
func (c *conn) abort(reason string) {
	c.mu.Lock()
	c.broken = true
	c.mu.Unlock()
	c.terminate(reason)
}

// isBroken reports whether the transport failed (see abort).
func (c *conn) isBroken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// stopped reports whether terminate was called.
func (c *conn) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// receive processes bytes from the client: the handshake first, then hub messages.
// It returns errInputClosed when the connection is closing and errGone when it ended.
func (c *conn) receive(data []byte) error {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if c.inClosed {
		return errGone
	}
	c.lastRecv.Store(time.Now().UnixNano())
	if !c.handshaken.Load() {
		if c.out.Sealed() {
			return errInputClosed
		}
		c.hsBuf = append(c.hsBuf, data...)
		req, rest, err := protocol.ParseHandshakeRequest(c.hsBuf)
		if errors.Is(err, protocol.ErrIncomplete) {
			if len(c.hsBuf) > maxHandshakeSize {
				return c.handshakeFailed("Handshake request is too large.")
			}
			return nil
		}
		if err != nil {
			return c.handshakeFailed(fmt.Sprintf("Handshake request is invalid: %v", err))
		}
		if len(c.hsBuf)-len(rest) > maxHandshakeSize {
			return c.handshakeFailed("Handshake request is too large.")
		}
		if err := c.completeHandshake(req); err != nil {
			return err
		}
		data = rest
		c.hsBuf = nil
		if len(data) == 0 {
			return nil
		}
	}
	c.dec.Write(data)
	for {
		m, err := c.dec.Next()
		if err != nil {
			c.inClosed = true
			text := fmt.Sprintf("Connection closed with an error: invalid message: %v", err)
			if errors.Is(err, protocol.ErrMessageTooLarge) {
				text = fmt.Sprintf("Connection closed with an error: the message exceeds the maximum message size of %d bytes.", c.s.cfg.MaxMessageSize)
			}
			c.s.log.Debug("closing connection on bad input", slog.String("connectionId", c.id), slog.Any("error", err))
			c.closeWithError(text)
			return errInputClosed
		}
		if m == nil {
			return nil
		}
		if end := c.handle(m); end {
			c.inClosed = true
			return errInputClosed
		}
	}
}

// handshakeFailed answers with an error handshake response and ends the connection.
func (c *conn) handshakeFailed(text string) error {
	c.inClosed = true
	c.setReason(text)
	c.out.Seal(protocol.AppendHandshakeResponse(nil, text))
	c.mu.Lock()
	c.sealedAt = time.Now()
	c.mu.Unlock()
	c.poke()
	return errInputClosed
}

func (c *conn) completeHandshake(req protocol.HandshakeRequest) error {
	p, ok := protocol.Lookup(req.Protocol)
	if !ok {
		return c.handshakeFailed(fmt.Sprintf("The protocol '%s' is not supported.", req.Protocol))
	}
	if req.Version < 0 || req.Version > p.Version() {
		return c.handshakeFailed(fmt.Sprintf("The server does not support version %d of the '%s' protocol.", req.Version, req.Protocol))
	}
	c.mu.Lock()
	kind := c.kind
	c.mu.Unlock()
	if p.Binary() && kind == transport.ServerSentEvents {
		return c.handshakeFailed(fmt.Sprintf("Cannot use the '%s' protocol on the current transport. The transport does not support 'Binary' transfer format.", req.Protocol))
	}
	ping, err := p.AppendFrame(nil, &protocol.Ping{})
	if err != nil {
		return c.handshakeFailed("The server could not encode messages of the protocol.")
	}
	c.proto = p
	c.pingFrame = ping
	c.dec = protocol.NewDecoder(p, c.s.cfg.MaxMessageSize)
	c.binary.Store(p.Binary())
	if !c.out.Push(protocol.AppendHandshakeResponse(nil, "")) {
		c.inClosed = true
		return errInputClosed
	}
	c.lastSend.Store(time.Now().UnixNano())
	c.handshaken.Store(true)
	c.poke() // the loop now times keep-alives instead of the handshake
	c.s.registry.Add(c)
	if c.s.upstream != nil {
		c.mu.Lock()
		query := c.query
		c.mu.Unlock()
		c.session = c.s.upstream.Open(upstream.ConnInfo{
			ID:       c.id,
			Hub:      c.hubName,
			UserID:   c.user,
			Query:    query,
			Claims:   c.claims,
			Protocol: p,
		}, c.reply)
		c.session.Connected()
	}
	c.s.log.Debug("connection handshake done", slog.String("connectionId", c.id),
		slog.String("hub", c.hubName), slog.String("protocol", p.Name()))
	return nil
}

// reply delivers an upstream result frame, already framed in the client's protocol.
func (c *conn) reply(frame []byte) { c.Send(frame) }

// handle reacts to one hub message; true means the client closed the connection.
func (c *conn) handle(m protocol.Message) bool {
	switch m := m.(type) {
	case *protocol.Close:
		c.terminate(m.Error)
		return true
	case *protocol.Invocation:
		switch {
		case c.session != nil:
			c.session.Invoke(m)
		case m.InvocationID != "":
			c.completionError(m.InvocationID, "No upstream is configured for this hub.")
		}
	case *protocol.StreamInvocation:
		c.completionError(m.InvocationID, "Stream invocations are not supported.")
	}
	// Ping only counts as activity; Completion, StreamItem, CancelInvocation, Ack,
	// Sequence and unknown types have no meaning in serverless mode.
	return false
}

func (c *conn) completionError(id, text string) {
	f, err := c.proto.AppendFrame(nil, &protocol.Completion{InvocationID: id, Error: text})
	if err != nil {
		c.s.log.Error("encoding completion", slog.Any("error", err))
		return
	}
	c.Send(f)
}

// run is the connection's lifecycle loop: timers (handshake, keep-alive, client
// timeout) and, for the push transports, the single writer that sends everything
// queued in one write. write is nil for long polling, whose polls pull the outbox.
// It returns when the transport must end.
func (c *conn) run(ctx context.Context, write func(ctx context.Context, batch []byte) error) {
	var ready <-chan struct{}
	if write != nil {
		ready = c.out.Ready()
	}
	t := time.NewTimer(c.nextWake(time.Now()))
	defer t.Stop()
	var spare []byte
	for {
		select {
		case <-ready:
			batch, sealed := c.out.Take(spare)
			if len(batch) > 0 {
				if err := write(ctx, batch); err != nil {
					c.abort("The transport failed: " + err.Error())
					return
				}
			}
			if sealed {
				c.terminate("")
				return
			}
			spare = batch
			if cap(spare) > 16<<10 {
				spare = nil // do not pin a burst's buffer to an idle connection
			}
		case <-t.C:
			now := time.Now()
			c.tick(now)
			t.Reset(c.nextWake(now))
		case <-c.wake:
			t.Reset(c.nextWake(time.Now()))
		case <-c.stop:
			return
		case <-ctx.Done():
			c.terminate("")
			return
		}
	}
}

// activity is when the client was last heard from; a pending poll counts as now.
func (c *conn) activity(now time.Time) time.Time {
	last := time.Unix(0, c.lastRecv.Load())
	if c.kind == transport.LongPolling {
		pending, lastEnd := c.poller.Activity()
		if pending {
			return now
		}
		if lastEnd.After(last) {
			last = lastEnd
		}
	}
	return last
}

func (c *conn) nextWake(now time.Time) time.Duration {
	cfg := &c.s.cfg
	c.mu.Lock()
	sealedAt, startedAt := c.sealedAt, c.startedAt
	c.mu.Unlock()
	var at time.Time
	switch {
	case c.out.Sealed():
		if c.kind != transport.LongPolling {
			return time.Hour // the writer ends the transport
		}
		at = sealedAt.Add(min(c.s.lpCloseGrace, cfg.ClientTimeout))
	case !c.handshaken.Load():
		at = startedAt.Add(cfg.HandshakeTimeout)
	default:
		at = c.activity(now).Add(cfg.ClientTimeout)
		if ka := time.Unix(0, c.lastSend.Load()).Add(cfg.KeepAliveInterval); ka.Before(at) {
			at = ka
		}
	}
	return max(at.Sub(now), time.Millisecond)
}

func (c *conn) tick(now time.Time) {
	cfg := &c.s.cfg
	c.mu.Lock()
	sealedAt, startedAt := c.sealedAt, c.startedAt
	c.mu.Unlock()
	switch {
	case c.out.Sealed():
		if c.kind == transport.LongPolling && now.Sub(sealedAt) >= min(c.s.lpCloseGrace, cfg.ClientTimeout) {
			c.terminate("")
		}
	case !c.handshaken.Load():
		if now.Sub(startedAt) >= cfg.HandshakeTimeout {
			c.terminate("Handshake was not completed within the handshake timeout.")
		}
	case now.Sub(c.activity(now)) >= cfg.ClientTimeout:
		const text = "Server timeout elapsed without receiving a message from the client."
		if pending, _ := c.poller.Activity(); c.kind == transport.LongPolling && !pending {
			c.terminate(text) // nobody would pick up a Close message
			return
		}
		c.closeWithError(text)
	case now.Sub(time.Unix(0, c.lastSend.Load())) >= cfg.KeepAliveInterval:
		if c.out.Push(c.pingFrame) {
			c.lastSend.Store(now.UnixNano())
		}
	}
}

// finish runs once after the transport ended: the connection leaves the registry, the
// upstream hears "disconnected", and the id is forgotten.
func (c *conn) finish() {
	c.inMu.Lock()
	c.inClosed = true
	sess := c.session
	c.inMu.Unlock()
	c.out.Seal(nil)
	c.s.registry.Remove(c)
	c.mu.Lock()
	reason := c.reason
	kind := c.kind
	c.mu.Unlock()
	if sess != nil {
		sess.Disconnected(reason)
	}
	c.s.remove(c)
	c.s.log.Debug("connection ended", slog.String("connectionId", c.id), slog.String("hub", c.hubName),
		slog.String("transport", kind.String()), slog.String("reason", reason))
}
