package upstream

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// Issue 8 (S2): under overload, refused invocations cost nearly as much CPU as admitted
// ones (encoded, queued, a worker started, then refused), so goodput halved when the
// offered load doubled. An invocation whose event is at its limit, with no wait for a
// slot (SlotWait < 0), is refused inside Invoke, before its encoding and without a
// worker: the reply is there when Invoke returns, and no session became busy.
func TestOverloadedRefusedBeforeAWorker(t *testing.T) {
	u := saturated(t)
	rb := newReplies(protocol.JSON())
	b := u.Open(ConnInfo{ID: "B", Hub: "chat", Protocol: protocol.JSON()}, rb.fn)
	b.Invoke(&protocol.Invocation{InvocationID: "2", Target: "slow"})
	checkRefusedInInvoke(t, rb, "1 calls in flight for event slow of hub chat")
	if st := u.Stats(); st.BusySessions != 1 || st.Overloaded != 1 {
		t.Errorf("stats %+v: want only A's session busy, one refusal", st)
	}
}

// saturated is an Upstream whose event slow of hub chat has its one call in flight
// (held until the test ends), with no wait for a slot: the next is refused in Invoke.
func saturated(t *testing.T) *Upstream {
	t.Helper()
	f, stalled, release := stallingFake(t)
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), MaxInFlightPerEvent: 1, SlotWait: -1})
	t.Cleanup(release) // registered after newUpstream's Close, so it runs before it
	u.Open(ConnInfo{ID: "A", Hub: "chat", Protocol: protocol.JSON()}, newReplies(protocol.JSON()).fn).
		Invoke(&protocol.Invocation{InvocationID: "1", Target: "slow"})
	waitHeld(t, stalled)
	return u
}

func checkRefusedInInvoke(t *testing.T, r *replies, what string) {
	t.Helper()
	select {
	case frame := <-r.ch:
		if c := decodeCompletion(t, protocol.JSON(), frame); !strings.HasPrefix(c.Error, ErrTextOverloaded) ||
			!strings.Contains(c.Error, what) {
			t.Errorf("refusal %+v", c)
		}
	default:
		t.Fatal("the refusal was not replied before Invoke returned")
	}
}

// waitLine waits until n invocations wait for a slot of some event of u.
func waitLine(t *testing.T, u *Upstream, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		u.partLimit.mu.Lock()
		live := 0
		for _, q := range u.partLimit.queues {
			live += q.live
		}
		u.partLimit.mu.Unlock()
		if live == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d invocations wait for a slot, want %d", live, n)
		}
		time.Sleep(time.Millisecond) // the waiter's worker has no signal to await
	}
}

// With a wait for a slot (Issue 8, S2 at 2x: bursts were refused that slots freed a
// few milliseconds later would have served), an invocation whose event is full waits
// in line and is served when a call ends, without holding a slot of its hub meanwhile;
// once as many wait as the event may have in flight, the next is refused inside
// Invoke, before a worker.
func TestInvocationWaitsForASlot(t *testing.T) {
	f, stalled, release := stallingFake(t)
	defer release()
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL + "/{event}"}),
		MaxInFlightPerEvent: 1, MaxInFlightPerHub: 2, SlotWait: time.Hour})
	open := func(id string) (*Session, *replies) {
		r := newReplies(protocol.JSON())
		return u.Open(ConnInfo{ID: id, Hub: "chat", Protocol: protocol.JSON()}, r.fn), r
	}
	a, ra := open("A")
	a.Invoke(&protocol.Invocation{InvocationID: "1", Target: "slow"})
	waitHeld(t, stalled)
	b, rb := open("B")
	b.Invoke(&protocol.Invocation{InvocationID: "2", Target: "slow"})
	waitLine(t, u, 1)
	c, rc := open("C")
	c.Invoke(&protocol.Invocation{InvocationID: "3", Target: "slow"})
	checkRefusedInInvoke(t, rc, "1 calls in flight for event slow of hub chat")
	// B's wait holds no slot of the hub: another event of chat takes the second one.
	c.Invoke(&protocol.Invocation{InvocationID: "4", Target: "other"})
	waitHeld(t, stalled)
	release()
	for _, r := range []*replies{ra, rb, rc} {
		if got := r.next(t); got.Error != "" {
			t.Fatalf("after the stall: %+v", got)
		}
	}
	if st := u.Stats(); st.Overloaded != 1 || st.SlotWaits != 1 {
		t.Errorf("stats %+v: want one refusal, one wait served", st)
	}
}

// A waiter gives up after SlotWait while its event stays stalled: it is refused as
// overloaded, and the line is empty again.
func TestSlotWaitEnds(t *testing.T) {
	f, stalled, release := stallingFake(t)
	defer release()
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), MaxInFlightPerEvent: 1, SlotWait: 20 * time.Millisecond})
	u.Open(ConnInfo{ID: "A", Hub: "chat", Protocol: protocol.JSON()}, newReplies(protocol.JSON()).fn).
		Invoke(&protocol.Invocation{InvocationID: "1", Target: "slow"})
	waitHeld(t, stalled)
	rb := newReplies(protocol.JSON())
	u.Open(ConnInfo{ID: "B", Hub: "chat", Protocol: protocol.JSON()}, rb.fn).
		Invoke(&protocol.Invocation{InvocationID: "2", Target: "slow"})
	if c := rb.next(t); !strings.HasPrefix(c.Error, ErrTextOverloaded) {
		t.Fatalf("after its wait: %+v", c)
	}
	waitLine(t, u, 0)
	if st := u.Stats(); st.Overloaded != 1 || st.SlotWaits != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The signature is cached per session and the headers per event; a key rotation must
// still sign the next call of an open session with the new keys.
func TestRotatedKeysSignOpenSessions(t *testing.T) {
	f := newFake(t, nil)
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), AccessKeys: []string{"key-one"}})
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "conn-1", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	for i, keys := range [][]string{{"key-one"}, {"key-two", "key-one"}, {"key-two"}} {
		u.SetAccessKeys(keys)
		s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "echo"})
		r.next(t)
		got := f.next(t)
		if sig := got.Header.Get("X-ASRS-Signature"); sig != auth.UpstreamSignature(keys, "conn-1") {
			t.Errorf("call %d signed %q, want the keys %v", i, sig, keys)
		}
		if ev := got.Header.Get("X-ASRS-Event"); ev != "echo" {
			t.Errorf("call %d: event %q", i, ev)
		}
	}
}

// The wait for a slot counts from the invocation's arrival: one that queued behind its
// connection's earlier calls for longer than SlotWait is refused when its turn comes,
// without waiting again (a client invoking a stalled event 64 times would otherwise get
// its last refusal only after 64 waits); one that arrived just now waits in line.
func TestSlotWaitCountsFromArrival(t *testing.T) {
	u := newUpstream(t, Options{Rules: ParseRules([]string{"http://127.0.0.1:1"}), MaxInFlightPerEvent: 1, SlotWait: time.Hour})
	if !u.partLimit.tryAcquire("p") {
		t.Fatal("first slot")
	}
	late := make(chan bool, 1)
	go func() { late <- u.eventSlot("p", time.Now().Add(-time.Hour)) }()
	select {
	case ok := <-late:
		if ok {
			t.Fatal("took a slot of a full event")
		}
	case <-time.After(waitFor):
		t.Fatal("waited although its time from arrival was up")
	}
	fresh := make(chan bool, 1)
	go func() { fresh <- u.eventSlot("p", time.Now()) }()
	waitLine(t, u, 1)
	u.partLimit.release("p")
	select {
	case ok := <-fresh:
		if !ok {
			t.Fatal("the waiter got no slot")
		}
	case <-time.After(waitFor):
		t.Fatal("the waiter was not handed the released slot")
	}
	u.partLimit.release("p")
}

// A refusal's Completion is encoded once per event and limit, then only the id is
// put in (when the protocol writes it as is): the frames are those a full encoding
// gives, for every protocol and any id.
func TestRefusalFrameIsTheEncodedCompletion(t *testing.T) {
	u := saturated(t)
	for _, p := range []protocol.Protocol{protocol.JSON(), protocol.MessagePack()} {
		r := newReplies(p)
		s := u.Open(ConnInfo{ID: "B", Hub: "chat", Protocol: p}, r.fn)
		for _, id := range []string{"2", "abc-DEF_9.x", `q"uote`, "é", "3"} {
			s.Invoke(&protocol.Invocation{InvocationID: id, Target: "slow"})
			got := r.nextFrame(t)
			want := s.completionFrame(id, ErrTextOverloaded+": 1 calls in flight for event slow of hub chat.")
			if !bytes.Equal(got, want) {
				t.Errorf("%s, id %q: refusal %q, want %q", p.Name(), id, got, want)
			}
		}
	}
}

// Refusing an invocation at once allocates little more than its frame: under
// overload refusals outnumber calls, and their cost takes the admitted calls' CPU.
func TestRefusalAllocations(t *testing.T) {
	u := saturated(t)
	s := u.Open(ConnInfo{ID: "B", Hub: "chat", Protocol: protocol.JSON()}, func([]byte) {})
	inv := &protocol.Invocation{InvocationID: "12345", Target: "slow"}
	s.Invoke(inv)
	if n := testing.AllocsPerRun(100, func() { s.Invoke(inv) }); n > 1 {
		t.Errorf("%.1f allocations per refusal, want at most 1 (the frame)", n)
	}
}
