package upstream

import (
	"strings"
	"testing"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// Issue 8 (S2): under overload, refused invocations cost nearly as much CPU as admitted
// ones (encoded, queued, a worker started, then refused), so goodput halved when the
// offered load doubled. An invocation whose event is at its limit is now refused inside
// Invoke, before its encoding and without a worker: the reply is there when Invoke
// returns, and no session became busy.
func TestOverloadedRefusedBeforeAWorker(t *testing.T) {
	f, stalled, release := stallingFake(t)
	defer release()
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), MaxInFlightPerEvent: 1})
	u.Open(ConnInfo{ID: "A", Hub: "chat", Protocol: protocol.JSON()}, newReplies(protocol.JSON()).fn).
		Invoke(&protocol.Invocation{InvocationID: "1", Target: "slow"})
	waitHeld(t, stalled)
	rb := newReplies(protocol.JSON())
	b := u.Open(ConnInfo{ID: "B", Hub: "chat", Protocol: protocol.JSON()}, rb.fn)
	b.Invoke(&protocol.Invocation{InvocationID: "2", Target: "slow"})
	select {
	case frame := <-rb.ch:
		if c := decodeCompletion(t, protocol.JSON(), frame); !strings.HasPrefix(c.Error, ErrTextOverloaded) ||
			!strings.Contains(c.Error, "1 calls in flight for event slow of hub chat") {
			t.Errorf("refusal %+v", c)
		}
	default:
		t.Fatal("the refusal was not replied before Invoke returned")
	}
	if st := u.Stats(); st.BusySessions != 1 || st.Overloaded != 1 {
		t.Errorf("stats %+v: want only A's session busy, one refusal", st)
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
