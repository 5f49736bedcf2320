package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/metrics"
	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/internal/upstream"
	"github.com/signalbox-io/signalbox/protocol"
)

// defaultLPCloseGrace bounds how long a long-polling connection that was told to close
// waits for a poll to pick up its Close message.
const defaultLPCloseGrace = 5 * time.Second

var (
	// errInputClosed tells a reader to stop: the connection is closing.
	errInputClosed = errors.New("connection is closing")
	// errGone means the connection ended before the bytes arrived.
	errGone = errors.New("connection is gone")
)

// wsConn is what a connection needs of its WebSocket (tests replace it).
type wsConn interface {
	WriteFramed(batch []byte, binary bool) error
	TryWriteFramed(batch []byte, binary bool) (rest []byte, err error)
	QueueWriteFramed(sb *transport.SendBatch, batch []byte, binary bool, done transport.WriteDoner) (queued bool, rest []byte, err error)
	FinishWrite(rest []byte) error
	Close() error
	CloseNow() error
}

// conn is one client connection: it implements hub.Client. Its lifecycle: created by
// negotiate (or a WebSocket request without id), started when a transport attaches,
// closing when its outbox is sealed (a Close message is the last frame), ended when
// stop is closed, finished after cleanup.
type conn struct {
	// An idle connection costs its struct, so it holds only what every connection
	// uses; what only an upstream, long polling, stateful reconnect or token service
	// claims need hangs off a pointer that stays nil without them (docs/performance.md,
	// S4). Fields are ordered so that the small ones pack.
	s   *Server
	out *transport.Outbox
	// What a fan-out reads and writes of every recipient (Queue, then Flush), together
	// at the front: with 10,000 recipients each is a cache miss, and these took three
	// or four lines of the struct (docs/performance.md, S1).
	proto      protocol.Protocol            // set once before handshaken is stored
	metrics    *metrics.Conn                // set once before handshaken is stored
	sr         atomic.Pointer[statefulConn] // stateful reconnect (reconnect.go): set by a version 2 WebSocket handshake
	writeSince atomic.Int64                 // unix ns when the current WebSocket write began; 0 = none
	lastSend   atomic.Int64
	handshaken atomic.Bool
	isWS       atomic.Bool // the transport is a WebSocket (pushed by an on-demand writer)
	writerOn   atomic.Bool // a WebSocket writer goroutine is running
	binary     atomic.Bool // frames are written as binary WebSocket messages
	spare      []byte      // the writer's reusable buffer; owned by whoever set writerOn

	id      string // public connection id (REST API, upstream)
	token   string // the secret id= value; equals id for negotiate v0
	hubName string // lower-cased
	user    string
	addr    string // client IP address, for the per-address limits
	// tokenSum is the SHA-256 of the access token that created the connection (see
	// usableBy); a digest, so the token itself is not kept.
	tokenSum [32]byte
	tokenExp int64          // that token's exp in unix ns, 0 = none (see heldBy)
	set      *tokenSettings // the token's service claims; nil = none (see settings)
	up       *connUpstream  // nil when the server has no upstream

	mu        sync.Mutex
	startedAt int64             // unix ns
	sealedAt  int64             // unix ns
	reason    string            // why the connection ended; "" = clean
	ws        wsConn            // the WebSocket once upgraded
	poller    *transport.Poller // long polling only; set with kind
	// stopCh is closed by terminate; made only for those who wait on it (stopChan).
	stopCh    chan struct{}
	kind      transport.Kind
	started   bool
	expired   bool // discarded before any transport attached
	reasonSet bool
	broken    bool // the transport failed; do not attempt a closing handshake
	finished  bool // cleanup began: no timer re-arm, no new writer
	cleaning  bool // the cleanup of a goroutine-less transport was started
	detached  bool // the transport is lost, a stateful reconnect may resume (reconnect.go)
	timerOn   bool // the lifecycle timer (s.sweep) serves the connection: a transport attached

	stopFlag   atomic.Bool // terminate was called: the transport must end now; set under mu
	postBusy   atomic.Bool
	slowMarked atomic.Bool // counted as a slow consumer
	srAsked    atomic.Bool // negotiated with useStatefulReconnect
	lastRecv   atomic.Int64

	inMu     sync.Mutex // serializes inbound processing
	inClosed bool
	// sweepSlot is the connection's index + 1 in s.sweep, 0 when not armed; under
	// s.sweep.mu (here it fills padding).
	sweepSlot int32
	inHeld    int // bytes of partial input reserved from the server's memory budget
	hsBuf     []byte
	dec       *protocol.Decoder

	// hsMu is held while the connection joins the registry and queues its handshake
	// response, so that a message sent to it in that window queues behind the response.
	hsMu sync.Mutex
}

// connUpstream is what a connection keeps for the upstream only.
type connUpstream struct {
	claims  []auth.Claim
	query   string            // connect query forwarded upstream; under conn.mu
	session *upstream.Session // under conn.inMu

	streamMu sync.Mutex      // guards streams; never held while taking conn.mu
	streams  map[string]bool // server-to-client streams the client started, by invocation id
}

// session returns the upstream session, nil without one; inMu is held.
func (c *conn) session() *upstream.Session {
	if c.up == nil {
		return nil
	}
	return c.up.session
}

// settings returns the token's service settings (zero: as configured).
func (c *conn) settings() tokenSettings {
	if c.set == nil {
		return tokenSettings{}
	}
	return *c.set
}

// userKey is the per-user limit's key: hub + NUL + user id; "" for anonymous.
func (c *conn) userKey() string {
	if c.user == "" {
		return ""
	}
	return c.hubName + "\x00" + c.user
}

// ID, Hub, UserID and Protocol implement hub.Client.
func (c *conn) ID() string                  { return c.id }
func (c *conn) Hub() string                 { return c.hubName }
func (c *conn) UserID() string              { return c.user }
func (c *conn) Protocol() protocol.Protocol { return c.proto }

// Send queues a frame without blocking. A full queue closes the connection as a slow
// consumer: one stalled client never holds up a broadcast.
func (c *conn) Send(frame []byte) bool {
	ok, flush := c.Queue(frame, time.Now().UnixNano())
	if flush {
		c.flush()
	}
	return ok
}

// Queue implements hub.Queuer: Send, except that when flush is true the frame is
// queued and the caller must call Flush to get it written.
func (c *conn) Queue(frame []byte, now int64) (ok, flush bool) {
	if !c.handshaken.Load() {
		// Registered but the handshake response is not queued yet: wait for it.
		c.hsMu.Lock()
		//lint:ignore SA2001 waiting for the holder is the point of this critical section
		c.hsMu.Unlock()
	}
	if sr := c.sr.Load(); sr != nil {
		return c.sendTracked(sr, frame), false
	}
	if ok, flush = c.queue(frame, now); ok {
		return true, flush
	}
	if c.out.Sealed() {
		return false, false
	}
	// Concurrent sends (a broadcast and a group send) can all find the queue full
	// before the first seals it: slowConsumer counts and logs it once.
	c.slowConsumer("slow consumer")
	return false, false
}

// Flush implements hub.Queuer: it writes what Queue queued.
func (c *conn) Flush() { c.flush() }

// slowConsumer closes a connection whose client does not read (its queue is full, or
// a write did not complete within the write timeout). It counts and logs it once,
// however many senders found the queue full at the same time.
func (c *conn) slowConsumer(reason string) {
	// A writer stuck in a write to a client that does not read: a Close message would
	// only queue behind it. The socket is dropped instead, which ends the write and
	// releases the queue and the kernel's buffers at once.
	stuck := c.isWS.Load() && c.writeSince.Load() != 0
	if !c.stopped() && c.slowMarked.CompareAndSwap(false, true) {
		c.s.slowConsumers.Add(1)
		c.s.metrics.SlowConsumerClosed()
		c.s.log.Warn("closing slow consumer", slog.String("hub", c.hubName), slog.String("connectionId", c.id),
			slog.String("reason", reason), slog.Int("queuedFrames", c.out.Len()))
		if !stuck {
			c.closeWithError(reason)
			return
		}
	}
	if stuck {
		c.abort(reason)
		c.mu.Lock()
		ws := c.ws
		c.mu.Unlock()
		if ws != nil {
			_ = ws.CloseNow() // also when the connection was already ending
		}
	}
}

// Close queues a Close message as the connection's last frame; the transport ends
// once it is written.
func (c *conn) Close(reason string, allowReconnect bool) {
	if !c.handshaken.Load() {
		// A close that finds the connection registered but its handshake response not
		// queued yet (REST close right after start()) waits for it, as Send does;
		// otherwise the socket closed without the Close message and the client never
		// learnt the reason.
		c.hsMu.Lock()
		//lint:ignore SA2001 waiting for the holder is the point of this critical section
		c.hsMu.Unlock()
	}
	var final []byte
	if c.handshaken.Load() {
		f, err := c.proto.AppendFrame(nil, &protocol.Close{Error: reason, AllowReconnect: allowReconnect})
		if err == nil {
			final = f
		}
	}
	if !c.seal(final) {
		return
	}
	c.endIfDetached(reason)
	c.mu.Lock()
	started := c.started
	c.expired = c.expired || !started
	c.mu.Unlock()
	if !started {
		c.s.remove(c)
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

// stopped reports whether terminate was called.
func (c *conn) stopped() bool { return c.stopFlag.Load() }

// stopChan returns a channel closed by terminate. Made on demand: only transports and
// calls that wait for the end need it, and an idle WebSocket would hold it for nothing.
func (c *conn) stopChan() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopCh == nil {
		c.stopCh = make(chan struct{})
		if c.stopFlag.Load() {
			close(c.stopCh)
		}
	}
	return c.stopCh
}

// receive processes bytes from the client: the handshake first, then hub messages.
// It returns errInputClosed when the connection is closing and errGone when it ended.
func (c *conn) receive(data []byte) error { return c.receiveGen(0, data) }

// receiveGen is receive for the input of socket gen (see reconnect.go); the input of
// a replaced socket is dropped.
func (c *conn) receiveGen(gen uint64, data []byte) (err error) {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	defer c.recoverPanic("receiving", &err)
	if c.inClosed || c.inputGen() != gen {
		return errGone
	}
	// Only whole messages count as activity: a client trickling one unfinished
	// message must still reach the client timeout.
	if !c.handshaken.Load() {
		if c.out.Sealed() {
			return errInputClosed
		}
		c.hsBuf = append(c.hsBuf, data...)
		req, rest, err := protocol.ParseHandshakeRequest(c.hsBuf)
		if errors.Is(err, protocol.ErrIncomplete) {
			if len(c.hsBuf) > c.s.cfg.MaxHandshakeSize {
				return c.handshakeFailed("Handshake request is too large.")
			}
			return nil
		}
		if err != nil {
			return c.handshakeFailed(fmt.Sprintf("Handshake request is invalid: %v", err))
		}
		if len(c.hsBuf)-len(rest) > c.s.cfg.MaxHandshakeSize {
			return c.handshakeFailed("Handshake request is too large.")
		}
		if err := c.completeHandshake(req); err != nil {
			return err
		}
		c.lastRecv.Store(time.Now().UnixNano())
		data = rest
		c.hsBuf = nil
		if len(data) == 0 {
			return nil
		}
	}
	if c.dec == nil {
		c.dec = protocol.NewDecoder(c.proto, c.s.cfg.MaxMessageSize)
	}
	c.dec.Write(data)
	messages := 0
	defer func() { c.metrics.Received(messages, len(data)) }()
	for {
		m, err := c.dec.Next()
		if err != nil {
			c.inClosed = true
			c.releaseInput()
			text := fmt.Sprintf("Connection closed with an error: invalid message: %v", err)
			if errors.Is(err, protocol.ErrMessageTooLarge) {
				text = fmt.Sprintf("Connection closed with an error: the message exceeds the maximum message size of %d bytes.", c.s.cfg.MaxMessageSize)
			}
			c.s.log.Debug("closing connection on bad input", slog.String("connectionId", c.id), slog.Any("error", err))
			c.closeWithError(text)
			return errInputClosed
		}
		if m == nil {
			return c.holdPartial()
		}
		messages++
		c.lastRecv.Store(time.Now().UnixNano())
		if end := c.handle(m); end {
			c.inClosed = true
			return errInputClosed
		}
	}
}

// holdPartial accounts the bytes of an unfinished message against the server's
// memory budget; a connection that would pass it is closed. inMu is held.
func (c *conn) holdPartial() error {
	held := c.dec.Buffered()
	switch delta := held - c.inHeld; {
	case delta > 0 && !c.s.budget.Reserve(delta):
		c.s.budget.Release(c.inHeld)
		c.inHeld = 0
		c.inClosed = true
		c.s.budgetRefusals.Add(1)
		c.s.log.Warn("closing connection: memory budget exhausted", slog.String("hub", c.hubName), slog.String("connectionId", c.id),
			slog.Int("partialBytes", held), slog.Int64("budget", c.s.budget.Limit()))
		c.closeWithError("Connection closed with an error: the server's memory budget for unfinished messages is exhausted.")
		return errInputClosed
	case delta < 0:
		c.s.budget.Release(-delta)
	}
	c.inHeld = held
	if held == 0 {
		c.dec = nil // an idle connection keeps no decoder buffer
	}
	return nil
}

// releaseInput gives the partial input's bytes back to the budget; inMu is held.
func (c *conn) releaseInput() {
	c.s.budget.Release(c.inHeld)
	c.inHeld = 0
}

// handshakeFailed answers with an error handshake response and ends the connection.
func (c *conn) handshakeFailed(text string) error {
	c.inClosed = true
	c.setReason(text)
	c.seal(protocol.AppendHandshakeResponse(nil, text))
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
	if _, err := c.s.pingFrame(p); err != nil {
		return c.handshakeFailed("The server could not encode messages of the protocol.")
	}
	c.proto = p
	c.enableStateful(req.Version, kind)
	c.metrics = c.s.metrics.ConnOpened(c.hubName, kind.String(), p.Name())
	c.binary.Store(p.Binary())
	// Join the registry before the client can see the handshake response: once its
	// start() resolves, a REST send to it must reach it. finish() removes it again.
	c.hsMu.Lock()
	if err := c.s.node.Add(context.Background(), c); err != nil {
		// The connection is registered locally whatever the error; the cluster
		// catches up with it once its broker is back.
		c.s.log.Warn("connection not registered with the cluster", slog.String("connectionId", c.id), slog.Any("error", err))
	}
	queued := c.enqueue(protocol.AppendHandshakeResponse(nil, ""))
	if h := c.s.afterHandshakeQueued; h != nil {
		h()
	}
	c.handshaken.Store(true)
	c.hsMu.Unlock()
	if !queued {
		c.inClosed = true
		return errInputClosed
	}
	c.rearm() // the timer now serves keep-alives instead of the handshake
	c.s.trace(TraceEvent{Kind: "connect", Hub: c.hubName, ConnectionID: c.id, UserID: c.user, Transport: kind.String(), Protocol: p.Name()})
	if c.up != nil && c.hubName != TraceHub {
		c.mu.Lock()
		query := c.up.query
		c.mu.Unlock()
		c.up.session = c.s.upstream.Open(upstream.ConnInfo{
			ID:       c.id,
			Hub:      c.hubName,
			UserID:   c.user,
			Query:    query,
			Claims:   c.up.claims,
			Protocol: p,
			// Only called with upstream-reject-connections, when connected was refused.
			OnRejected: c.closeWithError,
		}, c.reply)
		c.up.session.Connected()
	}
	c.s.log.Debug("connection handshake done", slog.String("connectionId", c.id),
		slog.String("hub", c.hubName), slog.String("protocol", p.Name()))
	return nil
}

// reply delivers an upstream result frame, already framed in the client's protocol;
// the answer to a stream invocation is filtered by streamReply.
func (c *conn) reply(frame []byte) {
	if c.streamReply(frame) {
		return
	}
	c.Send(frame)
}

// handle reacts to one hub message; true means the client closed the connection.
func (c *conn) handle(m protocol.Message) bool {
	if h := c.s.beforeHandle; h != nil {
		h(m)
	}
	if sr := c.sr.Load(); sr != nil && !c.inbound(sr, m) {
		return false
	}
	switch m := m.(type) {
	case *protocol.Close:
		c.terminate(m.Error)
		return true
	case *protocol.Invocation:
		if c.hubName == TraceHub {
			c.traceInvocation(m)
			break
		}
		c.s.trace(TraceEvent{Kind: "invocation", Hub: c.hubName, ConnectionID: c.id, UserID: c.user, Target: m.Target})
		if text := c.checkArguments(m.Arguments); text != "" {
			if m.InvocationID != "" {
				c.completionError(m.InvocationID, text)
			}
			c.s.log.Debug("invocation refused", slog.String("connectionId", c.id), slog.String("reason", text))
			return false
		}
		switch sess := c.session(); {
		case sess != nil:
			sess.Invoke(m)
		case m.InvocationID != "":
			c.completionError(m.InvocationID, "No upstream is configured for this hub")
		}
	case *protocol.StreamInvocation:
		// The function app learns the stream id (the invocation id) from the
		// invocation and feeds the stream through the REST API (streams/{id}/:send).
		switch sess := c.session(); {
		case sess == nil:
			c.completionError(m.InvocationID, "Stream invocations need an upstream: no upstream is configured for this hub")
		case m.InvocationID == "":
		case !c.openStream(m.InvocationID):
			c.completionError(m.InvocationID, "Too many streams are open on this connection.")
		default:
			sess.Invoke(&protocol.Invocation{Headers: m.Headers, InvocationID: m.InvocationID, Target: m.Target, Arguments: m.Arguments})
		}
	case *protocol.Completion:
		// A client result for POST .../:invoke.
		c.s.calls.complete(c.id, m)
	case *protocol.CancelInvocation:
		c.closeStream(m.InvocationID)
	}
	// Ping only counts as activity; StreamItem, Ack, Sequence and unknown types have
	// no meaning in serverless mode.
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

// checkArguments returns the client's error text when an argument nests deeper than
// max-argument-depth (or is invalid), "" when the arguments may go upstream.
func (c *conn) checkArguments(args []protocol.Value) string {
	for i, a := range args {
		d, err := a.Depth()
		if err != nil {
			return fmt.Sprintf("Invocation failed: argument %d is not a valid value.", i)
		}
		if d > c.s.cfg.MaxArgumentDepth {
			return fmt.Sprintf("Invocation failed: argument %d nests arrays and objects %d deep; at most %d is allowed.", i, d, c.s.cfg.MaxArgumentDepth)
		}
	}
	return ""
}

// recoverPanic, deferred by the code that works for one connection, turns a panic into
// the end of that connection: logged with its stack, counted, the client told with a
// Close, and the process goes on. Deferred in receive (inMu held), it also stops the
// input and makes receive return errInputClosed through err.
func (c *conn) recoverPanic(where string, err *error) {
	p := recover()
	if p == nil {
		return
	}
	c.s.panics.Add(1)
	c.s.log.Error("panic while handling a connection; the connection is closed", slog.String("connectionId", c.id),
		slog.String("hub", c.hubName), slog.String("operation", where), slog.String("panic", fmt.Sprint(p)),
		slog.String("stack", string(debug.Stack())))
	if err != nil {
		c.inClosed = true
		*err = errInputClosed
	}
	c.closeWithError("Connection closed with an error: internal server error.")
}
