package server

import (
	"errors"
	"log/slog"
	"time"

	"github.com/signalbox-io/signalbox/internal/transport"
)

// A connection costs as few goroutines as its transport allows: an idle WebSocket has
// none (the server's event loop reads it when bytes arrive, the writer runs only while
// there is something to send, timers are time.AfterFunc callbacks); Server-Sent
// Events keep the response's handler; long polling needs nothing between polls.

// enqueue queues frame and gets it written; false when the outbox refused it.
func (c *conn) enqueue(frame []byte) bool {
	ok, flush := c.queue(frame, time.Now().UnixNano())
	if flush {
		c.flush()
	}
	return ok
}

// queue queues frame without writing it; ok is false when the outbox refused it.
// flush true means the caller took over the connection's idle writer and must call
// flush (a fan-out queues to every recipient first and writes after). now is the
// time in unix ns, read once per fan-out rather than once per recipient: the clock
// read was the largest single cost of a queue push to a busy connection
// (docs/performance.md, S1); the keep-alive and the write timeout need no better.
func (c *conn) queue(frame []byte, now int64) (ok, flush bool) {
	if !c.out.Push(frame) {
		return false, false
	}
	c.metrics.Sent(len(frame))
	c.lastSend.Store(now)
	// A WebSocket write stuck for longer than the write timeout means the client stopped
	// reading. Checked here for free on every send, and by the lifecycle timer when
	// nothing is sent.
	if ws := c.writeSince.Load(); ws != 0 && now-ws >= int64(c.s.cfg.WriteTimeout) {
		c.slowConsumer("The client did not read within the write timeout.")
		return true, false
	}
	return true, c.claimWriter()
}

// seal queues final as the last frame (see transport.Outbox.Seal) and gets it written.
func (c *conn) seal(final []byte) bool {
	if !c.out.Seal(final) {
		return false
	}
	c.mu.Lock()
	c.sealedAt = time.Now().UnixNano()
	c.mu.Unlock()
	c.rearm()
	c.kick()
	return true
}

// tinyBatch is the capacity up to which a written batch is not kept for the next one:
// a Ping or a handshake response with the frame header's headroom.
const tinyBatch = 32

// claimWriter makes the caller the WebSocket's writer unless one runs already. SSE
// and long polling pull from the outbox themselves.
func (c *conn) claimWriter() bool {
	return c.isWS.Load() && !c.writerOn.Load() && c.writerOn.CompareAndSwap(false, true)
}

// kick starts the WebSocket writer goroutine unless a writer runs already.
func (c *conn) kick() {
	if !c.claimWriter() {
		return
	}
	if ws, done, ok := c.writerSocket(); ok {
		go c.writeLoop(ws, done, pendingWrite{})
	}
}

// writerSocket returns the socket a claimed writer writes to and counts the writer
// in the server's wait group (the writer calls Done). ok is false, and the claim is
// given up, when the connection has no socket to write to.
func (c *conn) writerSocket() (ws wsConn, done chan struct{}, ok bool) {
	c.mu.Lock()
	if c.ws == nil || c.finished || c.detached {
		c.mu.Unlock()
		c.writerOn.Store(false)
		return nil, nil, false
	}
	// The connection's transport still holds its own count, so this Add never races
	// with a Wait that saw zero.
	c.s.wg.Add(1)
	ws = c.ws
	if sr := c.sr.Load(); sr != nil {
		// A stateful reconnect waits for this writer before the next socket gets one.
		done = make(chan struct{})
		sr.writerDone = done
	}
	c.mu.Unlock()
	return ws, done, true
}

// flush writes what is queued, for a caller that claimed the writer (queue said
// so). An idle connection's socket takes a small batch at once: it is written on the
// caller's goroutine without waiting, which saves the goroutine start and wake-up
// per delivery that dominated a fan-out to idle connections (docs/performance.md,
// S1). Whatever must wait (a full socket, the last batch with its closing handshake)
// goes to the writer goroutine. A stateful connection always uses the goroutine: a
// reconnect waits for its writer to end before the next socket gets one.
func (c *conn) flush() { c.flushInto(nil) }

// flushInto is flush for a fan-out that gathers its writes in sb (nil: none): a
// batch is written when sb sends, and WriteDone goes on from there.
func (c *conn) flushInto(sb *transport.SendBatch) {
	ws, done, ok := c.writerSocket()
	if !ok {
		return
	}
	if done != nil {
		go c.writeLoop(ws, done, pendingWrite{})
		return
	}
	c.flushLoop(ws, sb)
}

// flushLoop is flushInto once the caller is the writer of ws.
func (c *conn) flushLoop(ws wsConn, sb *transport.SendBatch) {
	for {
		batch, sealed := c.out.TakeFramed(c.spare)
		if sealed {
			go c.writeLoop(ws, nil, pendingWrite{batch: batch, sealed: true, taken: true})
			return
		}
		if len(batch) == 0 {
			if !c.releaseWriter(batch) {
				c.s.wg.Done()
				return
			}
			continue
		}
		var rest []byte
		var err error
		if sb != nil {
			var queued bool
			if queued, rest, err = ws.QueueWriteFramed(sb, batch, c.binary.Load(), c); queued {
				return
			}
		} else {
			rest, err = ws.TryWriteFramed(batch, c.binary.Load())
		}
		if !c.wrote(ws, batch, rest, err) {
			return
		}
	}
}

// wrote ends a write without waiting of batch (TryWriteFramed's or a gathered one's
// rest and err): what the socket did not take, or a write found in progress, goes
// to the writer goroutine. It reports whether the caller is still the writer, with
// frames queued meanwhile to write.
func (c *conn) wrote(ws wsConn, batch, rest []byte, err error) bool {
	if errors.Is(err, transport.ErrWriteBusy) {
		// Another frame is on the wire (a Pong that may wait for the client): the
		// writer goroutine waits for it, not the fan-out.
		go c.writeLoop(ws, nil, pendingWrite{batch: batch, taken: true})
		return false
	}
	if err != nil {
		c.s.wg.Done()
		c.abort("The transport failed: " + err.Error())
		return false // writerOn stays set: nothing more can be written
	}
	if len(rest) > 0 {
		go c.writeLoop(ws, nil, pendingWrite{batch: batch, rest: rest, taken: true})
		return false
	}
	if !c.releaseWriter(batch) {
		c.s.wg.Done()
		return false
	}
	return true
}

// WriteDone implements transport.WriteDoner: a write flushInto gathered was sent.
func (c *conn) WriteDone(ws *transport.WebSocket, batch, rest []byte, err error) {
	if c.wrote(ws, batch, rest, err) {
		c.flushLoop(ws, nil)
	}
}

// pendingWrite is what a writer goroutine finishes before it takes from the outbox:
// a batch flush took (taken), of which rest is still to be written when not empty
// (TryWriteFramed kept the write lock for it).
type pendingWrite struct {
	batch, rest   []byte
	sealed, taken bool
}

// writeLoop sends everything queued, one write per batch, until the outbox is empty.
// After the sealed last batch it closes the transport gracefully.
func (c *conn) writeLoop(ws wsConn, done chan struct{}, p pendingWrite) {
	defer c.s.wg.Done()
	if done != nil {
		defer close(done)
	}
	defer c.recoverPanic("writing", nil)
	for {
		batch, sealed, rest := p.batch, p.sealed, p.rest
		if !p.taken {
			batch, sealed = c.out.TakeFramed(c.spare)
		}
		p = pendingWrite{}
		if len(batch) > 0 {
			// The lifecycle timer enforces the write timeout (see tick): cheaper than
			// a deadline per write.
			c.writeSince.Store(time.Now().UnixNano())
			var err error
			if len(rest) > 0 {
				err = ws.FinishWrite(rest)
			} else {
				err = ws.WriteFramed(batch, c.binary.Load())
			}
			c.writeSince.Store(0)
			if err != nil {
				c.abort("The transport failed: " + err.Error())
				return // writerOn stays set: nothing more can be written
			}
		}
		if sealed {
			_ = ws.Close() // the closing handshake; the socket closes on the answer
			c.terminate("")
			return
		}
		if !c.releaseWriter(batch) {
			return
		}
	}
}

// releaseWriter keeps batch's buffer for the next one and gives up the writer; true
// means frames came meanwhile and the caller is the writer again.
func (c *conn) releaseWriter(batch []byte) bool {
	c.spare = batch[:0]
	if cap(c.spare) > 16<<10 || cap(c.spare) <= tinyBatch {
		// Do not pin a burst's buffer to an idle connection, nor keep the few bytes
		// of a keep-alive: they would not hold the next message anyway, and every
		// idle connection would carry two such buffers.
		c.spare = nil
	}
	c.writerOn.Store(false)
	// A frame pushed after Take but before the flag cleared found the writer
	// running and did not start one: look again.
	if c.out.Idle() {
		return false
	}
	return c.writerOn.CompareAndSwap(false, true)
}

// terminate ends the transport now, without a Close message.
func (c *conn) terminate(reason string) {
	c.setReason(reason)
	c.mu.Lock()
	if c.stopFlag.Load() {
		c.mu.Unlock()
		return
	}
	c.stopFlag.Store(true)
	if c.stopCh != nil {
		close(c.stopCh)
	}
	c.mu.Unlock()
	c.startCleanup()
}

// startCleanup ends a terminated WebSocket or long-polling connection: neither has a
// goroutine of its own to do it. It runs once, when the connection is both
// terminated and (for a WebSocket) attached to its socket.
func (c *conn) startCleanup() {
	c.mu.Lock()
	run := !c.cleaning && c.started && c.stopped() &&
		(c.kind == transport.LongPolling || (c.kind == transport.WebSockets && c.ws != nil))
	if run {
		c.cleaning = true
	}
	ws, broken := c.ws, c.broken
	c.mu.Unlock()
	if !run {
		return
	}
	go func() {
		defer c.s.wg.Done()
		if ws != nil {
			if broken {
				_ = ws.CloseNow()
			} else {
				_ = ws.Close() // a no-op when the writer closed it already
			}
		}
		c.finish()
	}()
}

// abort is terminate for a broken transport: nothing more can be written to it.
func (c *conn) abort(reason string) {
	if c.transportLost(c.socketGen(), reason) {
		return // a stateful connection waits for its client to reconnect
	}
	c.mu.Lock()
	c.broken = true
	c.mu.Unlock()
	c.terminate(reason)
}

// startTimer arms the lifecycle timer when a transport attaches.
func (c *conn) startTimer() {
	now := time.Now()
	d := c.nextWake(now)
	c.mu.Lock()
	if !c.finished && !c.timerOn {
		c.timerOn = true
		c.s.sweep.arm(c, now.Add(d).UnixNano())
	}
	c.mu.Unlock()
}

// rearm recomputes the timer after a state change (handshake done, sealed).
func (c *conn) rearm() {
	now := time.Now()
	d := c.nextWake(now)
	c.mu.Lock()
	if c.timerOn && !c.finished {
		c.s.sweep.arm(c, now.Add(d).UnixNano())
	}
	c.mu.Unlock()
}

func (c *conn) onTimer() {
	defer c.recoverPanic("on its timer", nil)
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		c.expire() // negotiated, and no transport attached within the negotiate timeout
		return
	}
	if c.stopped() {
		return
	}
	c.tick(time.Now())
	if !c.stopped() {
		c.rearm()
	}
}

// activity is when the client was last heard from; a pending poll counts as now.
// poller is the long-polling transport's, nil for the others.
func (c *conn) activity(now time.Time, poller *transport.Poller) time.Time {
	last := time.Unix(0, c.lastRecv.Load())
	if poller != nil {
		pending, lastEnd := poller.Activity()
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
	sealedAt, startedAt, kind, detached, poller := time.Unix(0, c.sealedAt), time.Unix(0, c.startedAt), c.kind, c.detached, c.poller
	c.mu.Unlock()
	authExpires := c.settings().authExpires
	var at time.Time
	switch {
	case detached:
		at = now.Add(time.Hour) // the reconnect window's timer watches it
	case c.out.Sealed():
		if kind != transport.LongPolling {
			at = now.Add(time.Hour) // the writer ends the transport
			break
		}
		at = sealedAt.Add(min(c.s.lpCloseGrace, cfg.ClientTimeout))
	case !c.handshaken.Load():
		at = startedAt.Add(c.handshakeTimeout())
	default:
		at = c.activity(now, poller).Add(cfg.ClientTimeout)
		if ka := time.Unix(0, c.lastSend.Load()).Add(cfg.KeepAliveInterval); ka.Before(at) {
			at = ka
		}
	}
	if ws := c.writeSince.Load(); ws != 0 {
		if wd := time.Unix(0, ws).Add(cfg.WriteTimeout); wd.Before(at) {
			at = wd
		}
	}
	if ae := authExpires; !ae.IsZero() && !c.out.Sealed() && ae.Before(at) {
		at = ae
	}
	return max(at.Sub(now), time.Millisecond)
}

func (c *conn) tick(now time.Time) {
	cfg := &c.s.cfg
	c.mu.Lock()
	sealedAt, startedAt, kind, detached, poller := time.Unix(0, c.sealedAt), time.Unix(0, c.startedAt), c.kind, c.detached, c.poller
	c.mu.Unlock()
	authExpires := c.settings().authExpires
	if detached {
		return // the reconnect window's timer watches it
	}
	if ws := c.writeSince.Load(); ws != 0 && now.Sub(time.Unix(0, ws)) >= cfg.WriteTimeout {
		// The client stopped reading; aborting closes the socket under the write.
		c.slowConsumer("The client did not read within the write timeout.")
		return
	}
	switch {
	case c.out.Sealed():
		// A long-polling client that does not come back for its Close message.
		if kind == transport.LongPolling && now.Sub(sealedAt) >= min(c.s.lpCloseGrace, cfg.ClientTimeout) {
			c.terminate("")
		}
	case !authExpires.IsZero() && !now.Before(authExpires):
		c.setReason("The authentication of the connection has expired.")
		c.Close("The authentication of the connection has expired.", true)
	case !c.handshaken.Load():
		if now.Sub(startedAt) >= c.handshakeTimeout() {
			c.setReason("Handshake was not completed within the handshake timeout.")
			c.seal(nil)
		}
	case now.Sub(c.activity(now, poller)) >= cfg.ClientTimeout:
		const text = "Server timeout elapsed without receiving a message from the client."
		if poller != nil {
			if pending, _ := poller.Activity(); !pending {
				c.terminate(text) // nobody would pick up a Close message
				return
			}
		}
		c.closeWithError(text)
	case now.Sub(time.Unix(0, c.lastSend.Load())) >= cfg.KeepAliveInterval:
		if ping, err := c.s.pingFrame(c.proto); err == nil {
			c.enqueue(ping)
		}
	}
}

// finish runs once after the transport ended: the connection leaves the registry, the
// upstream hears "disconnected", and the id is forgotten.
func (c *conn) finish() {
	c.mu.Lock()
	c.finished = true
	c.s.sweep.disarm(c)
	c.mu.Unlock()
	c.inMu.Lock()
	c.inClosed = true
	c.releaseInput()
	sess := c.session()
	c.inMu.Unlock()
	c.out.Seal(nil)
	c.out.Release() // the queued bytes go back to the memory budget
	c.dropStateful()
	c.s.node.Remove(c)
	c.mu.Lock()
	reason := c.reason
	kind := c.kind
	c.mu.Unlock()
	if c.handshaken.Load() {
		c.metrics.Closed()
		c.s.trace(TraceEvent{Kind: "disconnect", Hub: c.hubName, ConnectionID: c.id, UserID: c.user, Transport: kind.String(), Reason: reason})
	}
	if sess != nil {
		sess.Disconnected(reason)
	}
	c.s.remove(c)
	c.s.log.Debug("connection ended", slog.String("connectionId", c.id), slog.String("hub", c.hubName),
		slog.String("transport", kind.String()), slog.String("reason", reason))
}

// handshakeTimeout is the token's asrs.s.cht, else the configured timeout.
func (c *conn) handshakeTimeout() time.Duration {
	if t := c.settings().handshakeTimeout; t > 0 {
		return t
	}
	return c.s.cfg.HandshakeTimeout
}
