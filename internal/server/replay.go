package server

import (
	"errors"
	"fmt"
)

// Stateful reconnect (hub protocol version 2) numbers the trackable messages
// (Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation) of each
// direction from 1. The two types below hold that numbering for one connection;
// they do no locking and no I/O, so that the rules can be tested on their own.

// errAckAhead is an Ack for a message that was never sent.
var errAckAhead = errors.New("the client acknowledged a message it was never sent")

// replayBuffer keeps the outbound trackable messages until the client acknowledges
// them, so that a reconnect can replay them in order. At most limit bytes are "in
// flight" (sent on the current transport and not yet acknowledged); messages beyond
// wait in the buffer, unsent, until acknowledgements make room: back-pressure
// instead of loss. What waits is bounded by maxWaitBytes and maxWaitFrames; past
// them add fails and the connection has to be closed.
type replayBuffer struct {
	limit         int
	maxWaitBytes  int
	maxWaitFrames int

	entries  []replayEntry // ascending ids; entries[:sent] are in flight
	sent     int
	next     int64 // id of the next message
	inflight int   // bytes of entries[:sent]
	waiting  int   // bytes of entries[sent:]
}

type replayEntry struct {
	seq   int64
	frame []byte
}

func newReplayBuffer(limit, maxWaitBytes, maxWaitFrames int) *replayBuffer {
	return &replayBuffer{limit: limit, maxWaitBytes: maxWaitBytes, maxWaitFrames: maxWaitFrames, next: 1}
}

// add numbers frame (which the buffer keeps: the caller must not modify it). It
// reports whether the frame is to be written now; attached false (no transport)
// keeps it waiting. An error means it would pass the waiting bound: it was not
// added.
func (b *replayBuffer) add(frame []byte, attached bool) (write bool, err error) {
	canSend := attached && b.sent == len(b.entries) &&
		(b.sent == 0 || b.inflight+len(frame) <= b.limit)
	if !canSend && len(b.entries)-b.sent > 0 &&
		(b.waiting+len(frame) > b.maxWaitBytes || len(b.entries)-b.sent >= b.maxWaitFrames) {
		return false, fmt.Errorf("%d messages (%d bytes) wait for acknowledgements", len(b.entries)-b.sent, b.waiting)
	}
	b.entries = append(b.entries, replayEntry{seq: b.next, frame: frame})
	b.next++
	if canSend {
		b.sent++
		b.inflight += len(frame)
		return true, nil
	}
	b.waiting += len(frame)
	return false, nil
}

// ack drops the messages up to seq and returns how many bytes it freed and the
// frames that may now be written, in order (when attached).
func (b *replayBuffer) ack(seq int64, attached bool) (freed int, writable [][]byte, err error) {
	if seq >= b.next {
		return 0, nil, fmt.Errorf("%w: Ack %d, last sent %d", errAckAhead, seq, b.next-1)
	}
	n := 0
	for n < len(b.entries) && b.entries[n].seq <= seq {
		freed += len(b.entries[n].frame)
		n++
	}
	if n > b.sent {
		// Only possible for messages written on an earlier transport and not yet
		// replayed on this one: the client has them, they count as sent.
		for _, e := range b.entries[b.sent:n] {
			b.waiting -= len(e.frame)
			b.inflight += len(e.frame)
		}
		b.sent = n
	}
	for _, e := range b.entries[:n] {
		b.inflight -= len(e.frame)
	}
	clear(b.entries[:n]) // let the frames go
	b.entries = b.entries[n:]
	b.sent -= n
	if attached {
		writable = b.release()
	}
	return freed, writable, nil
}

// release moves waiting messages in flight while the limit allows (at least one
// when nothing is in flight, so that a message larger than the limit still goes).
func (b *replayBuffer) release() [][]byte {
	var out [][]byte
	for b.sent < len(b.entries) {
		f := b.entries[b.sent].frame
		if b.sent > 0 && b.inflight+len(f) > b.limit {
			break
		}
		out = append(out, f)
		b.sent++
		b.inflight += len(f)
		b.waiting -= len(f)
	}
	return out
}

// resume is called when a new transport replaces a lost one: every unacknowledged
// message is unsent again. It returns the id for the Sequence message (the first
// message to come) and the frames to write after it.
func (b *replayBuffer) resume() (first int64, writable [][]byte) {
	b.waiting += b.inflight
	b.inflight, b.sent = 0, 0
	first = b.next
	if len(b.entries) > 0 {
		first = b.entries[0].seq
	}
	return first, b.release()
}

// bytes is what the buffer holds in all.
func (b *replayBuffer) bytes() int { return b.inflight + b.waiting }

// inboundSeq numbers the client's trackable messages to drop the ones a reconnect
// resends although they were processed.
type inboundSeq struct {
	next      int64 // id of the next trackable message
	processed int64 // highest id processed
	// awaitSequence: after a reconnect the client's first message must be a
	// Sequence; anything before it is ignored (it cannot be numbered).
	awaitSequence bool
}

func newInboundSeq() inboundSeq { return inboundSeq{next: 1} }

// trackable numbers one trackable message and reports whether to process it
// (false: a duplicate, or before the Sequence of a reconnect).
func (s *inboundSeq) trackable() bool {
	if s.awaitSequence {
		return false
	}
	id := s.next
	s.next++
	if id <= s.processed {
		return false
	}
	s.processed = id
	return true
}

// sequence applies the client's Sequence message. An id beyond the next expected
// one means messages were lost: an error.
func (s *inboundSeq) sequence(id int64) error {
	if id < 1 || id > s.processed+1 {
		return fmt.Errorf("Sequence %d, but %d messages were received", id, s.processed)
	}
	s.next = id
	s.awaitSequence = false
	return nil
}
