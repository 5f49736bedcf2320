package protocol

import (
	"testing"
)

// benchInvocation is the common broadcast: a non-blocking Invocation with a few
// arguments, here built from the given protocol's bytes.
func benchInvocation(tb testing.TB, binary bool) *Invocation {
	tb.Helper()
	args := []Value{jv(`"hello world"`), jv(`{"user":"alice","count":42,"tags":["a","b"],"ok":true}`), jv(`3.25`)}
	if binary {
		for i, a := range args {
			mp, err := a.MessagePack()
			if err != nil {
				tb.Fatal(err)
			}
			args[i] = MessagePackValue(mp)
		}
	}
	return &Invocation{Target: "newMessage", Arguments: args}
}

func TestAppendFrameDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		p      Protocol
		binary bool
	}{{JSON(), false}, {MessagePack(), true}, {JSON(), true}, {MessagePack(), false}} {
		m := benchInvocation(t, tc.binary)
		buf := make([]byte, 0, 1024)
		allocs := testing.AllocsPerRun(100, func() {
			var err error
			if buf, err = tc.p.AppendFrame(buf[:0], m); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s with binary=%v args: %v allocations per frame", tc.p.Name(), tc.binary, allocs)
		}
		// Other messages, including the value form of Ping. (Boxing a larger struct
		// value in the Message interface allocates at the call site, so pointers
		// are used for those.)
		c := &Completion{InvocationID: "1", Result: m.Arguments[1], HasResult: true}
		cl := &Close{Error: "x"}
		allocs = testing.AllocsPerRun(100, func() {
			buf, _ = tc.p.AppendFrame(buf[:0], Ping{})
			buf, _ = tc.p.AppendFrame(buf[:0], c)
			buf, _ = tc.p.AppendFrame(buf[:0], cl)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations for other messages", tc.p.Name(), allocs)
		}
	}
}

func BenchmarkAppendFrameJSON(b *testing.B) {
	m := benchInvocation(b, false)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = JSON().AppendFrame(buf[:0], m)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendFrameMessagePack(b *testing.B) {
	m := benchInvocation(b, true)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = MessagePack().AppendFrame(buf[:0], m)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendFrameConvert writes JSON-origin arguments (a REST broadcast) to a
// MessagePack client, and the reverse.
func BenchmarkAppendFrameConvert(b *testing.B) {
	for _, tc := range []struct {
		name   string
		p      Protocol
		binary bool
	}{{"JSONToMessagePack", MessagePack(), false}, {"MessagePackToJSON", JSON(), true}} {
		b.Run(tc.name, func(b *testing.B) {
			m := benchInvocation(b, tc.binary)
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = tc.p.AppendFrame(buf[:0], m)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func benchDecoder(b *testing.B, p Protocol) {
	var stream []byte
	const perWrite = 10
	for range perWrite {
		var err error
		if stream, err = p.AppendFrame(stream, benchInvocation(b, p.Binary())); err != nil {
			b.Fatal(err)
		}
	}
	d := NewDecoder(p, 1<<16)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		d.Write(stream)
		for range perWrite {
			if m, err := d.Next(); err != nil || m == nil {
				b.Fatal(m, err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perWrite), "ns/msg")
}

// BenchmarkDecoderJSON decodes ten Invocations per Write; allocs/op is per Write.
func BenchmarkDecoderJSON(b *testing.B) { benchDecoder(b, JSON()) }

// BenchmarkDecoderMessagePack decodes ten Invocations per Write; allocs/op is per Write.
func BenchmarkDecoderMessagePack(b *testing.B) { benchDecoder(b, MessagePack()) }
