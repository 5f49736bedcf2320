package server

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func frames(names ...string) [][]byte {
	var out [][]byte
	for _, n := range names {
		out = append(out, []byte(n))
	}
	return out
}

func TestReplayBufferNumbersAndLimitsInFlight(t *testing.T) {
	b := newReplayBuffer(10, 100, 100)
	var written [][]byte
	for _, f := range frames("aaaa", "bbbb", "cccc", "dddd") {
		w, err := b.add(f, true)
		if err != nil {
			t.Fatal(err)
		}
		if w {
			written = append(written, f)
		}
	}
	// 4+4 fit in 10 bytes; the third waits (back-pressure, not loss).
	if !slices.EqualFunc(written, frames("aaaa", "bbbb"), slices.Equal) {
		t.Fatalf("written %q", written)
	}
	if b.inflight != 8 || b.waiting != 8 || b.next != 5 {
		t.Fatalf("inflight %d waiting %d next %d", b.inflight, b.waiting, b.next)
	}
	freed, more, err := b.ack(1, true)
	if err != nil || freed != 4 {
		t.Fatalf("ack 1: freed %d, %v", freed, err)
	}
	if !slices.EqualFunc(more, frames("cccc"), slices.Equal) {
		t.Fatalf("after ack 1: %q", more)
	}
	_, more, _ = b.ack(3, true)
	if !slices.EqualFunc(more, frames("dddd"), slices.Equal) || b.bytes() != 4 {
		t.Fatalf("after ack 3: %q, %d bytes", more, b.bytes())
	}
	// An ack already seen changes nothing.
	if freed, more, err := b.ack(2, true); err != nil || freed != 0 || more != nil {
		t.Fatalf("old ack: %d %q %v", freed, more, err)
	}
	if _, _, err := b.ack(5, true); !errors.Is(err, errAckAhead) {
		t.Fatalf("ack of an unsent id: %v", err)
	}
}

func TestReplayBufferLargeFrameGoesAlone(t *testing.T) {
	b := newReplayBuffer(10, 100, 100)
	if w, _ := b.add(make([]byte, 50), true); !w {
		t.Fatal("a frame larger than the limit must still go when nothing is in flight")
	}
	if w, _ := b.add([]byte("x"), true); w {
		t.Fatal("nothing may follow it before the ack")
	}
}

func TestReplayBufferWaitingBound(t *testing.T) {
	b := newReplayBuffer(4, 8, 100)
	for i, want := range []bool{true, false, false} { // 4 in flight, 4+4 waiting
		w, err := b.add([]byte("1234"), true)
		if err != nil || w != want {
			t.Fatalf("add %d: %v %v", i, w, err)
		}
	}
	if _, err := b.add([]byte("1234"), true); err == nil {
		t.Fatal("a frame past the waiting bound was accepted")
	}
	if b.next != 4 {
		t.Fatalf("a refused frame took id %d", b.next-1)
	}
	byFrames := newReplayBuffer(4, 1000, 2)
	byFrames.add([]byte("1234"), true)
	byFrames.add([]byte("1"), true)
	byFrames.add([]byte("2"), true)
	if _, err := byFrames.add([]byte("3"), true); err == nil {
		t.Fatal("a frame past the waiting frame count was accepted")
	}
}

func TestReplayBufferResumeReplaysUnackedInOrder(t *testing.T) {
	b := newReplayBuffer(100, 1000, 100)
	for i := 1; i <= 3; i++ {
		b.add(fmt.Appendf(nil, "m%d", i), true)
	}
	b.ack(1, true)
	// The transport is lost: messages keep coming and wait.
	for i := 4; i <= 5; i++ {
		if w, err := b.add(fmt.Appendf(nil, "m%d", i), false); w || err != nil {
			t.Fatalf("detached add: %v %v", w, err)
		}
	}
	// Acks cannot arrive while detached, but one in flight before the loss may be
	// processed late; it must not release anything.
	if _, more, _ := b.ack(1, false); more != nil {
		t.Fatalf("detached ack wrote %q", more)
	}
	first, replay := b.resume()
	if first != 2 || !slices.EqualFunc(replay, frames("m2", "m3", "m4", "m5"), slices.Equal) {
		t.Fatalf("resume: Sequence %d, replay %q", first, replay)
	}
	// Resuming again (a second loss before any ack) replays the same again.
	first, replay = b.resume()
	if first != 2 || len(replay) != 4 {
		t.Fatalf("second resume: Sequence %d, %d frames", first, len(replay))
	}
	b.ack(5, true)
	if first, replay := b.resume(); first != 6 || replay != nil {
		t.Fatalf("resume with nothing buffered: Sequence %d, %q", first, replay)
	}
}

func TestReplayBufferResumeRespectsLimit(t *testing.T) {
	b := newReplayBuffer(4, 1000, 100)
	b.add([]byte("aaaa"), true)
	b.add([]byte("bbbb"), false)
	b.add([]byte("cccc"), false)
	first, replay := b.resume()
	if first != 1 || !slices.EqualFunc(replay, frames("aaaa"), slices.Equal) {
		t.Fatalf("resume: %d %q", first, replay)
	}
	// An ack for a message sent on the old transport but not yet replayed (the
	// client had it) counts it as delivered.
	freed, more, err := b.ack(2, true)
	if err != nil || freed != 8 || !slices.EqualFunc(more, frames("cccc"), slices.Equal) {
		t.Fatalf("ack 2: %d %q %v", freed, more, err)
	}
	if b.inflight != 4 || b.waiting != 0 || b.sent != 1 {
		t.Fatalf("state: inflight %d waiting %d sent %d", b.inflight, b.waiting, b.sent)
	}
}

func TestInboundSeqDropsDuplicatesAfterSequence(t *testing.T) {
	s := newInboundSeq()
	for i := 0; i < 3; i++ {
		if !s.trackable() {
			t.Fatalf("message %d dropped", i+1)
		}
	}
	// Reconnect: nothing is numbered before the Sequence.
	s.awaitSequence = true
	if s.trackable() {
		t.Fatal("a message before the Sequence was processed")
	}
	if err := s.sequence(2); err != nil {
		t.Fatal(err)
	}
	// 2 and 3 are resent: dropped; 4 is new.
	got := []bool{s.trackable(), s.trackable(), s.trackable()}
	if !slices.Equal(got, []bool{false, false, true}) || s.processed != 4 {
		t.Fatalf("after Sequence 2: %v, processed %d", got, s.processed)
	}
	if err := s.sequence(6); err == nil {
		t.Fatal("a Sequence past the next expected id (lost messages) was accepted")
	}
	if err := s.sequence(0); err == nil {
		t.Fatal("Sequence 0 was accepted")
	}
	if err := s.sequence(5); err != nil {
		t.Fatalf("Sequence of the next id: %v", err)
	}
}
