package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/protocol"
)

// Stateful reconnect: a WebSocket connection that negotiated useStatefulReconnect and
// shook hands with protocol version 2 outlives its transport. When the socket is lost
// the connection stays registered (REST sends to it wait in its replay buffer, the
// upstream hears nothing) for the reconnect window; a WebSocket request with the same
// connection token, from the same token or user, resumes it: the server sends
// Sequence and replays every unacknowledged message, the client does the same.

// ackDelay is how long after a trackable client message the server acknowledges it
// (the reference implementation's timer).
const ackDelay = time.Second

// writerExitWait bounds how long a resume waits for the lost transport's writer.
const writerExitWait = 5 * time.Second

// statefulConn is a connection's stateful-reconnect state; the conn holds it from a
// version 2 handshake on a WebSocket that negotiated it.
type statefulConn struct {
	// mu orders the numbering of outbound messages with their queueing, and guards
	// out, held. Lock order: mu, then conn.mu.
	mu   sync.Mutex
	out  *replayBuffer
	held int  // bytes of out reserved from the server's memory budget
	gone bool // the connection is ending: nothing more is buffered

	in       inboundSeq // guarded by conn.inMu
	ackTimer *time.Timer
	ackDue   bool // guarded by conn.inMu

	window     *time.Timer   // under conn.mu: ends a detached connection
	writerDone chan struct{} // under conn.mu: closed when the last started writer exits

	// The sockets of the connection are numbered from 0; the ones before the current
	// one are ignored.
	wsGen atomic.Uint64 // the current socket; written under conn.mu
	inGen uint64        // under conn.inMu: the socket whose input is read

	resumeMu sync.Mutex // one resume at a time
}

// socketGen is the number of the connection's current socket (see statefulConn.wsGen).
func (c *conn) socketGen() uint64 {
	if sr := c.sr.Load(); sr != nil {
		return sr.wsGen.Load()
	}
	return 0
}

// inputGen is the number of the socket whose input is read; inMu is held.
func (c *conn) inputGen() uint64 {
	if sr := c.sr.Load(); sr != nil {
		return sr.inGen
	}
	return 0
}

// statefulReconnectFor reports whether a negotiate request asks for stateful
// reconnect and the server offers it for c.
func (s *Server) statefulReconnectFor(r *http.Request, c *conn) bool {
	vs := queryValues(r.URL.RawQuery, "useStatefulReconnect")
	if len(vs) == 0 || !equalFoldTrue(vs[0]) || s.cfg.ReconnectWindow <= 0 {
		return false
	}
	return c.settings().allows(transport.WebSockets)
}

func equalFoldTrue(v string) bool {
	return len(v) == 4 && (v[0]|0x20) == 't' && (v[1]|0x20) == 'r' && (v[2]|0x20) == 'u' && (v[3]|0x20) == 'e'
}

// enableStateful starts the numbering after the handshake when the connection
// negotiated stateful reconnect, shook hands with version 2 and is a WebSocket.
func (c *conn) enableStateful(version int, kind transport.Kind) {
	if !c.srAsked.Load() || version < 2 || kind != transport.WebSockets {
		return
	}
	cfg := &c.s.cfg
	c.sr.Store(&statefulConn{
		out: newReplayBuffer(cfg.ReconnectBufferBytes, cfg.SendQueueBytes, cfg.SendQueueFrames),
		in:  newInboundSeq(),
	})
}

// sendTracked numbers and buffers one trackable frame (every frame given to Send is
// one trackable message) and queues it when the in-flight limit allows.
func (c *conn) sendTracked(sr *statefulConn, frame []byte) bool {
	ok, closing := c.track(sr, frame)
	if closing != "" {
		c.slowConsumer(closing)
	}
	return ok
}

// track is sendTracked under sr.mu; closing is why the connection must be closed.
func (c *conn) track(sr *statefulConn, frame []byte) (ok bool, closing string) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.gone || c.out.Sealed() {
		return false, ""
	}
	if !c.s.budget.Reserve(len(frame)) {
		c.s.budgetRefusals.Add(1)
		return false, "Connection closed with an error: the server's memory budget for outbound messages is exhausted."
	}
	c.mu.Lock()
	attached := !c.detached
	c.mu.Unlock()
	write, err := sr.out.add(append([]byte(nil), frame...), attached)
	if err != nil {
		c.s.budget.Release(len(frame))
		return false, "Connection closed with an error: the client did not acknowledge messages (" + err.Error() + ")."
	}
	sr.held += len(frame)
	if write && !c.enqueue(frame) {
		// The outbox refused it (over its own bounds): the message stays buffered
		// for a reconnect, but this transport cannot go on.
		return true, "slow consumer"
	}
	return true, ""
}

// inbound applies the stateful-reconnect rules to one client message; false means
// the message is handled (Ack, Sequence) or dropped (a duplicate). inMu is held.
func (c *conn) inbound(sr *statefulConn, m protocol.Message) bool {
	switch m := m.(type) {
	case *protocol.Ack:
		c.acked(sr, m.SequenceID)
		return false
	case *protocol.Sequence:
		if err := sr.in.sequence(m.SequenceID); err != nil {
			c.s.log.Info("closing connection: bad Sequence", slog.String("connectionId", c.id), slog.Any("reason", err))
			c.closeWithError("Connection closed with an error: " + err.Error())
		}
		return false
	}
	if !m.Type().Trackable() {
		return true
	}
	if !sr.in.trackable() {
		return false
	}
	if !sr.ackDue {
		sr.ackDue = true
		if sr.ackTimer == nil {
			sr.ackTimer = time.AfterFunc(ackDelay, c.sendAck)
		} else {
			sr.ackTimer.Reset(ackDelay)
		}
	}
	return true
}

// acked frees what the client acknowledged and sends what waited for the room.
func (c *conn) acked(sr *statefulConn, seq int64) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.gone {
		return
	}
	c.mu.Lock()
	attached := !c.detached
	c.mu.Unlock()
	freed, writable, err := sr.out.ack(seq, attached)
	if err != nil {
		c.s.log.Info("closing connection: bad Ack", slog.String("connectionId", c.id), slog.Any("reason", err))
		go c.closeWithError("Connection closed with an error: " + err.Error())
		return
	}
	sr.held -= freed
	c.s.budget.Release(freed)
	for _, f := range writable {
		if !c.enqueue(f) {
			go c.slowConsumer("slow consumer")
			return
		}
	}
}

// sendAck acknowledges the client messages processed so far.
func (c *conn) sendAck() {
	defer c.recoverPanic("acknowledging", nil)
	sr := c.sr.Load()
	c.inMu.Lock()
	seq := sr.in.processed
	sr.ackDue = false
	closed := c.inClosed
	c.inMu.Unlock()
	c.mu.Lock()
	detached := c.detached
	c.mu.Unlock()
	if closed || detached || c.stopped() {
		return // a resume acknowledges with its Sequence exchange; the client resends
	}
	f, err := c.proto.AppendFrame(nil, &protocol.Ack{SequenceID: seq})
	if err == nil {
		c.enqueue(f)
	}
}

// transportLost keeps a stateful connection alive after its transport gen failed. It
// reports true when the event needs no more handling: it belongs to a replaced
// transport, or the connection now waits for a reconnect.
func (c *conn) transportLost(gen uint64, reason string) bool {
	if c.sr.Load() == nil {
		return false
	}
	c.mu.Lock()
	if c.socketGen() != gen {
		c.mu.Unlock()
		return true // an event of a transport that was replaced
	}
	if c.detached {
		c.mu.Unlock()
		return true
	}
	// A client that stopped reading is closed, not waited for.
	if c.finished || c.stopped() || c.out.Sealed() || !c.handshaken.Load() || c.slowMarked.Load() {
		c.mu.Unlock()
		return false
	}
	c.detached = true
	c.broken = true
	ws := c.ws
	window := c.s.cfg.ReconnectWindow
	sr := c.sr.Load()
	sr.window = time.AfterFunc(window, func() { c.windowElapsed(gen, reason) })
	c.mu.Unlock()
	if ws != nil {
		_ = ws.CloseNow()
	}
	c.s.log.Debug("transport lost; waiting for a stateful reconnect", slog.String("connectionId", c.id),
		slog.String("reason", reason), slog.Duration("window", window))
	return true
}

// windowElapsed ends a connection whose client did not come back in time; only now
// does the upstream hear "disconnected".
func (c *conn) windowElapsed(gen uint64, lost string) {
	defer c.recoverPanic("reconnect window", nil)
	c.mu.Lock()
	still := c.detached && c.socketGen() == gen
	c.mu.Unlock()
	if !still {
		return
	}
	c.s.log.Debug("reconnect window elapsed", slog.String("connectionId", c.id))
	c.terminate(fmt.Sprintf("The client did not reconnect within %v after the transport was lost (%s).", c.s.cfg.ReconnectWindow, lost))
}

// endIfDetached ends a connection closed while it waited for a reconnect: there is
// no transport to carry its Close message.
func (c *conn) endIfDetached(reason string) {
	c.mu.Lock()
	detached := c.detached
	c.mu.Unlock()
	if detached {
		c.terminate(reason)
	}
}

// isDetached reports whether the connection waits for a reconnect.
func (c *conn) isDetached() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.detached
}

// dropStateful gives the buffered messages' bytes back (the connection ended).
func (c *conn) dropStateful() {
	sr := c.sr.Load()
	if sr == nil {
		return
	}
	sr.mu.Lock()
	sr.gone = true
	c.s.budget.Release(sr.held)
	sr.held = 0
	sr.out = newReplayBuffer(0, 0, 0)
	sr.mu.Unlock()
	c.mu.Lock()
	if sr.window != nil {
		sr.window.Stop()
	}
	c.mu.Unlock()
	c.inMu.Lock()
	if sr.ackTimer != nil {
		sr.ackTimer.Stop()
	}
	c.inMu.Unlock()
}

// resumeWebSocket serves a reconnect of a stateful connection: the new socket
// replaces the lost one (or a half-open one the server did not notice yet).
func (s *Server) resumeWebSocket(w http.ResponseWriter, r *http.Request, c *conn, sr *statefulConn) {
	sr.resumeMu.Lock()
	defer sr.resumeMu.Unlock()
	if c.stopped() || c.out.Sealed() {
		textError(w, http.StatusNotFound, "No Connection with that ID")
		return
	}
	if !transport.IsWebSocketUpgrade(r) {
		textError(w, http.StatusBadRequest, "Cannot change transports mid-connection")
		return
	}
	// A socket the server still believes alive is replaced: the client only
	// reconnects after it lost it.
	c.transportLost(sr.wsGen.Load(), "The client reconnected on a new transport.")
	c.mu.Lock()
	done := sr.writerDone
	c.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-time.After(writerExitWait):
			textError(w, http.StatusServiceUnavailable, "The previous transport is still being written to; try again.")
			return
		}
	}
	gen := sr.wsGen.Load() + 1
	ws, err := s.loop.Accept(w, r, &resumedEvents{c: c, gen: gen})
	if err != nil {
		s.log.Debug("websocket upgrade failed on resume", slog.String("connectionId", c.id), slog.Any("error", err))
		return // still detached: the window runs on
	}
	// The new socket's input starts fresh: the old decoder's partial message was cut.
	c.inMu.Lock()
	sr.inGen = gen
	c.releaseInput()
	c.dec = nil
	sr.in.awaitSequence = true
	c.inClosed = false
	c.inMu.Unlock()

	sr.mu.Lock()
	c.out.Discard() // pings and frames of the old transport; the replay covers the rest
	first, writable := sr.out.resume()
	seqFrame, err := c.proto.AppendFrame(nil, &protocol.Sequence{SequenceID: first})
	ok := err == nil && c.out.Push(seqFrame)
	for _, f := range writable {
		ok = ok && c.out.Push(f)
	}
	c.mu.Lock()
	abandoned := c.finished || c.cleaning || c.stopped()
	if !abandoned {
		c.ws = ws
		sr.wsGen.Store(gen)
		c.detached, c.broken = false, false
		if sr.window != nil {
			sr.window.Stop()
			sr.window = nil
		}
		now := time.Now().UnixNano()
		c.lastRecv.Store(now)
		c.lastSend.Store(now)
		c.writeSince.Store(0)
		c.writerOn.Store(false)
	}
	c.mu.Unlock()
	sr.mu.Unlock()
	if abandoned {
		_ = ws.CloseNow()
		return
	}
	s.log.Debug("stateful reconnect", slog.String("connectionId", c.id), slog.Int64("sequenceId", first), slog.Int("count", len(writable)))
	if !ok {
		c.slowConsumer("slow consumer")
	}
	c.rearm()
	// Start before the first write: a writer must see the socket registered (Close
	// reads what registration wrote), and goroutines started later inherit that.
	ws.Start()
	c.kick()
}

// resumedEvents receives the events of a socket that resumed a connection (gen
// tells it apart from the sockets before it; the first socket is wsEvents, gen 0).
type resumedEvents struct {
	c   *conn
	gen uint64
}

// Data implements transport.Handler.
func (e *resumedEvents) Data(chunk []byte, _ bool) error { return e.c.receiveGen(e.gen, chunk) }

// Closed implements transport.Handler.
func (e *resumedEvents) Closed(err error) { e.c.wsClosed(e.gen, err) }

// wsClosed handles the end of the socket of generation gen.
func (c *conn) wsClosed(gen uint64, err error) {
	if c.socketGen() != gen {
		return
	}
	switch {
	case err == nil:
		c.terminate("")
	case !c.stopped():
		if c.transportLost(gen, "The WebSocket closed unexpectedly.") {
			return
		}
		c.abort("The WebSocket closed unexpectedly.")
	}
}
