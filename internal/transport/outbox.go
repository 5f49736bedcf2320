package transport

import (
	"math"
	"sync"
)

// Outbox is a connection's bounded outbound queue. Frames pushed while the writer is
// busy are appended to one buffer, so the writer sends everything waiting in a single
// write (coalescing). It never blocks a producer: when the queue is over its frame or
// byte budget, or the process-wide Budget is spent, Push refuses the frame and the
// caller decides what to do (close the slow consumer).
//
// The buffer keeps Headroom bytes in front of the frames, so that a WebSocket writer
// can put its frame header there and send header and batch in one write (TakeFramed).
type Outbox struct {
	maxFrames int32 // int32s: every connection has an Outbox (80 bytes, not 96)
	maxBytes  int32
	budget    *Budget

	mu       sync.Mutex
	pending  []byte // empty, or Headroom bytes followed by the queued frames
	frames   int
	reserved int  // bytes taken from budget for pending
	sealed   bool // no more frames accepted; the pending bytes are the last ones
	// ready exists only once a pulling transport (SSE, long polling) asked for it:
	// a WebSocket's outbox is pushed by its writer and needs no channel.
	ready chan struct{}
}

// NewOutbox returns an outbox that holds at most maxFrames frames and maxBytes bytes
// (values <= 0 mean unlimited), drawing on budget (nil: unlimited). A single frame
// larger than maxBytes is still accepted into an empty queue, so that large messages
// can be delivered to fast readers.
func NewOutbox(maxFrames, maxBytes int, budget *Budget) *Outbox {
	return &Outbox{maxFrames: clampInt32(maxFrames), maxBytes: clampInt32(maxBytes), budget: budget}
}

// clampInt32 is v within int32; 2 GiB or 2^31 frames are as good as unlimited.
func clampInt32(v int) int32 {
	return int32(min(v, math.MaxInt32))
}

// Push appends frame. It returns false, without queueing, when the outbox is sealed
// or full, or the budget is spent.
func (o *Outbox) Push(frame []byte) bool {
	o.mu.Lock()
	if o.sealed {
		o.mu.Unlock()
		return false
	}
	if o.frames > 0 && ((o.maxFrames > 0 && o.frames >= int(o.maxFrames)) ||
		(o.maxBytes > 0 && len(o.pending)-Headroom+len(frame) > int(o.maxBytes))) {
		o.mu.Unlock()
		return false
	}
	if !o.budget.Reserve(len(frame)) {
		o.mu.Unlock()
		return false
	}
	o.reserved += len(frame)
	o.appendLocked(frame)
	o.frames++
	o.signalLocked()
	o.mu.Unlock()
	return true
}

func (o *Outbox) appendLocked(frame []byte) {
	if len(o.pending) == 0 {
		o.pending = append(o.pending[:0], make([]byte, Headroom)...)
	}
	o.pending = append(o.pending, frame...)
}

// Seal queues final (may be empty) regardless of the limits and refuses every later
// Push. It reports false when the outbox was already sealed (final is then dropped).
func (o *Outbox) Seal(final []byte) bool {
	o.mu.Lock()
	if o.sealed {
		o.mu.Unlock()
		return false
	}
	o.sealed = true
	if len(final) > 0 {
		o.appendLocked(final)
		o.frames++
	}
	o.signalLocked()
	o.mu.Unlock()
	return true
}

func (o *Outbox) signalLocked() {
	if o.ready == nil {
		return
	}
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled (capacity one, level-triggered by Take) whenever frames were
// queued or the outbox was sealed; it is signalled at once when some wait already.
func (o *Outbox) Ready() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ready == nil {
		o.ready = make(chan struct{}, 1)
		if o.frames > 0 || o.sealed {
			o.ready <- struct{}{}
		}
	}
	return o.ready
}

// Take removes and returns every pending byte, and whether the outbox is sealed
// (then the returned bytes are the last ones). spare, if not nil, becomes the new
// pending buffer: writers pass back the previous batch once it is written, so a busy
// connection reuses two buffers.
func (o *Outbox) Take(spare []byte) (batch []byte, sealed bool) {
	batch, sealed = o.TakeFramed(spare)
	if len(batch) > 0 {
		batch = batch[Headroom:]
	}
	return batch, sealed
}

// TakeFramed is Take, except that a non-empty batch starts with Headroom free bytes
// (see WebSocket.WriteFramed).
func (o *Outbox) TakeFramed(spare []byte) (batch []byte, sealed bool) {
	o.mu.Lock()
	batch = o.pending
	o.pending = spare[:0]
	o.frames = 0
	o.budget.Release(o.reserved)
	o.reserved = 0
	sealed = o.sealed
	o.mu.Unlock()
	return batch, sealed
}

// Len returns the number of frames waiting.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.frames
}

// Idle reports whether nothing is waiting: no frame, not sealed (one lock where
// Len and Sealed take two; a writer asks after every write).
func (o *Outbox) Idle() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.frames == 0 && !o.sealed
}

// Sealed reports whether Seal was called.
func (o *Outbox) Sealed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sealed
}

// Release gives the queued bytes back to the budget: the connection ended. They stay
// readable (a last poll may still pick up the Close message) and go away with the
// outbox.
func (o *Outbox) Release() {
	o.mu.Lock()
	o.budget.Release(o.reserved)
	o.reserved = 0
	o.budget = nil
	o.mu.Unlock()
}

// Discard drops every pending byte and gives them back to the budget; the outbox
// stays usable (a stateful reconnect replays what matters on a new transport).
func (o *Outbox) Discard() {
	o.mu.Lock()
	o.pending = nil
	o.frames = 0
	o.budget.Release(o.reserved)
	o.reserved = 0
	o.mu.Unlock()
}
