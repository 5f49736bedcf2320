package transport

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/signalbox-io/signalbox/internal/uring"
)

// SendBatch gathers a fan-out's writes to many WebSockets and sends them with one
// system call per SendBatchSize of them (io_uring, Linux), where TryWriteFramed costs
// one send(2) each. On this machine a system call's entry and exit alone cost about
// 1 µs, and a broadcast to 2,000 idle connections was 2,000 sends: gathering them
// halved the server's CPU per delivery in a loopback test (docs/performance.md, S1,
// "Gathered sends"). The writes themselves are unchanged: each is MSG_DONTWAIT,
// takes what the socket takes now, and leaves the rest to the connection's writer.
//
// A SendBatch is used by one goroutine at a time.
type SendBatch struct {
	ring  *uring.Ring
	items []batchedWrite
	// holds[i] takes item i's descriptor reference and goes on to item i+1, so that
	// every queued descriptor is held open (against a concurrent Close and the reuse
	// of its number by another socket) until the ring has sent to it.
	holds []func(fd uintptr)
}

type batchedWrite struct {
	ws    *WebSocket
	batch []byte // as the caller gave it, for WriteDone
	b     []byte // the frame on the wire: batch from its header on; after the send, its rest
	done  WriteDoner
	slot  int   // index in the ring's queue; -1 when not queued
	err   error // the descriptor could not be held (the socket closed); after the send, the write's
}

// WriteDoner hears how a write queued with QueueWriteFramed ended: rest and err as
// TryWriteFramed returns them (rest not empty: the write lock is still held and
// FinishWrite(rest) must follow), and the batch it was given.
type WriteDoner interface {
	WriteDone(ws *WebSocket, batch, rest []byte, err error)
}

// SendBatchSize is how many writes a SendBatch gathers before it sends them.
const SendBatchSize = 256

// NewSendBatch makes a SendBatch with its own io_uring. It fails where io_uring is
// missing or forbidden; callers then write with TryWriteFramed.
func NewSendBatch() (*SendBatch, error) {
	r, err := uring.New(SendBatchSize)
	if err != nil {
		return nil, fmt.Errorf("transport: send batch: %w", err)
	}
	sb := &SendBatch{ring: r, items: make([]batchedWrite, 0, SendBatchSize),
		holds: make([]func(fd uintptr), SendBatchSize)}
	for i := range sb.holds {
		sb.holds[i] = func(fd uintptr) {
			it := &sb.items[i]
			it.slot = len(sb.ring.Queued())
			sb.ring.Queue(fd, it.b)
			sb.hold(i + 1)
		}
	}
	return sb, nil
}

// Err is the error of a failed io_uring: the batch must not be used again.
func (sb *SendBatch) Err() error { return sb.ring.Err() }

// Close releases the batch's io_uring. Nothing may be queued afterwards.
func (sb *SendBatch) Close() error { return sb.ring.Close() }

// QueueWriteFramed is TryWriteFramed for a fan-out that writes to many connections:
// the write is gathered into sb and happens at sb.Submit (or when a later
// QueueWriteFramed finds sb full), which then tells done. queued is false when it
// ends at once: then rest and err are TryWriteFramed's (ErrWriteBusy included) and
// done is not told.
func (ws *WebSocket) QueueWriteFramed(sb *SendBatch, batch []byte, binary bool, done WriteDoner) (queued bool, rest []byte, err error) {
	if len(sb.items) == cap(sb.items) {
		sb.Submit()
	}
	b, err := ws.lockForWrite(batch, binary)
	if err != nil || ws.rc == nil {
		return false, b, err
	}
	sb.items = append(sb.items, batchedWrite{ws: ws, batch: batch, b: b, done: done, slot: -1})
	return true, nil, nil
}

// Submit sends the queued writes and tells each one's WriteDoner how it ended, in
// the order they were queued.
func (sb *SendBatch) Submit() {
	if len(sb.items) == 0 {
		return
	}
	sb.hold(0)
	// Every write lock is released (or kept for a rest) before any WriteDoner runs:
	// what one of them does cannot wait for a connection later in the batch.
	sent := sb.ring.Queued()
	for i := range sb.items {
		it := &sb.items[i]
		var n int
		err := it.err
		if err == nil {
			s := sent[it.slot]
			n = s.N
			if s.Errno != 0 {
				err = s.Errno
			}
		}
		it.b, it.err = it.ws.wrote(it.b, n, err)
	}
	sb.ring.Reset()
	for i := range sb.items {
		it := &sb.items[i]
		it.done.WriteDone(it.ws, it.batch, it.b, it.err)
	}
	clear(sb.items)
	sb.items = sb.items[:0]
}

// hold takes the descriptor reference of item i and those after it, then sends
// them all: the references are released as the recursion returns, after the sends.
func (sb *SendBatch) hold(i int) {
	if i == len(sb.items) {
		if len(sb.ring.Queued()) > 0 {
			// A failed ring leaves EAGAIN on what it did not send (those writes go to
			// their connections' writers, as a full socket's do) and ECANCELED on
			// what it may have sent (those connections fail: their clients reconnect).
			_ = sb.ring.Submit()
		}
		return
	}
	it := &sb.items[i]
	if err := it.ws.rc.Control(sb.holds[i]); err != nil {
		it.err = err
		sb.hold(i + 1)
	}
}

// lockForWrite frames batch and takes the write lock without waiting, as a write that
// must not wait does: b is the frame from its header on. A nil error with a nil rc
// means there is no socket to write to directly (the lock stays held, b is the rest).
func (ws *WebSocket) lockForWrite(batch []byte, binary bool) (b []byte, err error) {
	op := byte(opText)
	if binary {
		op = opBinary
	}
	start := putHeader(batch, Headroom, op, len(batch)-Headroom)
	b = batch[start:]
	if !ws.wmu.TryLock() {
		return nil, ErrWriteBusy
	}
	if ws.closeSent {
		ws.wmu.Unlock()
		return nil, errors.New("websocket: write after close")
	}
	return b, nil
}

// wrote ends a write without waiting of which the socket took n bytes: the write lock
// is released unless a rest is left for FinishWrite.
func (ws *WebSocket) wrote(b []byte, n int, err error) (rest []byte, _ error) {
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
		err = nil
	}
	if err != nil {
		ws.wmu.Unlock()
		return nil, fmt.Errorf("websocket: write: %w", err)
	}
	if n = max(n, 0); n == len(b) {
		ws.wmu.Unlock()
		return nil, nil
	}
	return b[n:], nil
}
