package transport

import "sync"

// Outbox is a connection's bounded outbound queue. Frames pushed while the writer is
// busy are appended to one buffer, so the writer sends everything waiting in a single
// write (coalescing). It never blocks a producer: when the queue is over its frame or
// byte budget, Push refuses the frame and the caller decides what to do (close the
// slow consumer).
type Outbox struct {
	maxFrames int
	maxBytes  int

	mu      sync.Mutex
	pending []byte
	frames  int
	sealed  bool // no more frames accepted; the pending bytes are the last ones
	ready   chan struct{}
}

// NewOutbox returns an outbox that holds at most maxFrames frames and maxBytes bytes
// (values <= 0 mean unlimited). A single frame larger than maxBytes is still accepted
// into an empty queue, so that large messages can be delivered to fast readers.
func NewOutbox(maxFrames, maxBytes int) *Outbox {
	return &Outbox{maxFrames: maxFrames, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// Push appends frame. It returns false, without queueing, when the outbox is sealed
// or full.
func (o *Outbox) Push(frame []byte) bool {
	o.mu.Lock()
	if o.sealed {
		o.mu.Unlock()
		return false
	}
	if o.frames > 0 && ((o.maxFrames > 0 && o.frames >= o.maxFrames) ||
		(o.maxBytes > 0 && len(o.pending)+len(frame) > o.maxBytes)) {
		o.mu.Unlock()
		return false
	}
	o.pending = append(o.pending, frame...)
	o.frames++
	o.mu.Unlock()
	o.signal()
	return true
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
	o.pending = append(o.pending, final...)
	if len(final) > 0 {
		o.frames++
	}
	o.mu.Unlock()
	o.signal()
	return true
}

func (o *Outbox) signal() {
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled (capacity one, level-triggered by Take) whenever frames were
// queued or the outbox was sealed.
func (o *Outbox) Ready() <-chan struct{} { return o.ready }

// Take removes and returns every pending byte, and whether the outbox is sealed
// (then the returned bytes are the last ones). spare, if not nil, becomes the new
// pending buffer: writers pass back the previous batch once it is written, so a busy
// connection reuses two buffers.
func (o *Outbox) Take(spare []byte) (batch []byte, sealed bool) {
	o.mu.Lock()
	batch = o.pending
	o.pending = spare[:0]
	o.frames = 0
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

// Sealed reports whether Seal was called.
func (o *Outbox) Sealed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sealed
}
