package hub

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/signalbox-io/signalbox/protocol"
)

// benchClient counts frames instead of queueing them, so the benchmark measures
// the registry's fan-out and not a transport.
type benchClient struct {
	id    string
	proto protocol.Protocol
	n     atomic.Int64
}

func (c *benchClient) ID() string                  { return c.id }
func (c *benchClient) Hub() string                 { return "bench" }
func (c *benchClient) UserID() string              { return "" }
func (c *benchClient) Protocol() protocol.Protocol { return c.proto }
func (c *benchClient) Send(frame []byte) bool      { c.n.Add(int64(len(frame))); return true }
func (c *benchClient) Close(string, bool)          {}

func benchRegistry(b *testing.B, n int) *Registry {
	b.Helper()
	r := New(nil)
	for i := range n {
		p := protocol.JSON()
		if i%2 == 1 {
			p = protocol.MessagePack()
		}
		r.Add(&benchClient{id: fmt.Sprint("c", i), proto: p})
	}
	return r
}

// BenchmarkSendAll broadcasts one new payload per iteration to 10k connections,
// half JSON and half MessagePack: the allocations are the payload and its two
// encodings, nothing per recipient.
func BenchmarkSendAll(b *testing.B) {
	r := benchRegistry(b, 10_000)
	arg, err := protocol.ValueOf(map[string]any{"text": "hello", "n": 1})
	if err != nil {
		b.Fatal(err)
	}
	inv := &protocol.Invocation{Target: "broadcast", Arguments: []protocol.Value{arg}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.SendAll("bench", NewPayload(inv), nil)
	}
}

// BenchmarkSendAllExcluded adds a short excluded list, the common REST shape.
func BenchmarkSendAllExcluded(b *testing.B) {
	r := benchRegistry(b, 10_000)
	inv := &protocol.Invocation{Target: "broadcast"}
	excluded := []string{"c1", "c2", "c3"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.SendAll("bench", NewPayload(inv), excluded)
	}
}

// BenchmarkSendGroup sends to a 1k-member group of a 10k-connection hub.
func BenchmarkSendGroup(b *testing.B) {
	r := benchRegistry(b, 10_000)
	for i := 0; i < 10_000; i += 10 {
		r.AddToGroup("bench", "g", fmt.Sprint("c", i))
	}
	inv := &protocol.Invocation{Target: "group"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.SendGroup("bench", "g", NewPayload(inv), nil)
	}
}
