package protocol

import (
	"errors"
	"math"
	"testing"
)

// Stateful reconnect's Ack and Sequence: every id a long connection can reach
// survives both encodings, and ids that no sender writes are refused.
func TestAckSequenceRoundTrip(t *testing.T) {
	ids := []int64{0, 1, 127, 128, 255, 65535, 1 << 31, 1<<53 + 1, math.MaxInt64}
	for _, p := range []Protocol{JSON(), MessagePack()} {
		for _, id := range ids {
			for _, m := range []Message{&Ack{SequenceID: id}, &Sequence{SequenceID: id}} {
				frame, err := p.AppendFrame(nil, m)
				if err != nil {
					t.Fatalf("%s %T %d: %v", p.Name(), m, id, err)
				}
				dec := NewDecoder(p, 1<<10)
				dec.Write(frame)
				got, err := dec.Next()
				if err != nil {
					t.Fatalf("%s %T %d: decode %q: %v", p.Name(), m, id, frame, err)
				}
				if got.Type() != m.Type() || seqOf(got) != id {
					t.Fatalf("%s: %#v became %#v", p.Name(), m, got)
				}
			}
		}
	}
}

func seqOf(m Message) int64 {
	switch m := m.(type) {
	case *Ack:
		return m.SequenceID
	case *Sequence:
		return m.SequenceID
	}
	return -1
}

func TestAckSequenceInvalid(t *testing.T) {
	jsonCases := []string{
		`{"type":8}`,                   // missing sequenceId
		`{"type":9,"sequenceId":-1}`,   // negative
		`{"type":8,"sequenceId":"5"}`,  // a string
		`{"type":9,"sequenceId":1.5}`,  // not whole
		`{"type":8,"sequenceId":1e30}`, // beyond int64
		`{"type":9,"sequenceId":null}`, // null
		`{"type":8,"sequenceId":[1]}`,  // array
		`{"type":9,"sequenceId":9223372036854775808}`,
	}
	for _, in := range jsonCases {
		if m, err := JSON().ParseUnframed([]byte(in)); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("JSON %s: %#v, %v; want an invalid-message error", in, m, err)
		}
	}
	msgpackCases := []string{
		"91 08",                     // missing sequenceId
		"92 09 ff",                  // negative fixint
		"92 08 a131",                // a string
		"92 09 c0",                  // nil
		"92 08 cf 8000000000000000", // uint64 beyond int64
		"92 09 cb 3ff8000000000000", // float 1.5
	}
	for _, in := range msgpackCases {
		if m, err := MessagePack().ParseUnframed(unhexT(t, in)); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("MessagePack %s: %#v, %v; want an invalid-message error", in, m, err)
		}
	}
}
