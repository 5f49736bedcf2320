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

// queueClient is a benchClient that queues and is flushed (hub.Queuer), as the
// server's connections are.
type queueClient struct {
	benchClient
	flushed atomic.Int64
}

func (c *queueClient) Queue(frame []byte, _ int64) (bool, bool) {
	c.n.Add(int64(len(frame)))
	return true, true
}
func (c *queueClient) Flush() { c.flushed.Add(1) }

func benchRegistry(b *testing.B, n int) *Registry {
	b.Helper()
	return benchRegistryOf(b, n, func(id string, p protocol.Protocol) Client { return &benchClient{id: id, proto: p} })
}

func benchRegistryOf(b *testing.B, n int, newClient func(id string, p protocol.Protocol) Client) *Registry {
	b.Helper()
	r := New(nil)
	for i := range n {
		p := protocol.JSON()
		if i%2 == 1 {
			p = protocol.MessagePack()
		}
		r.Add(newClient(fmt.Sprint("c", i), p))
	}
	return r
}

// BenchmarkSendAllQueued is BenchmarkSendAll to clients that queue and are
// flushed after (the server's path): still nothing allocated per recipient, and the
// flush spread over GOMAXPROCS goroutines costs a few allocations per broadcast.
func BenchmarkSendAllQueued(b *testing.B) {
	r := benchRegistryOf(b, 10_000, func(id string, p protocol.Protocol) Client {
		return &queueClient{benchClient: benchClient{id: id, proto: p}}
	})
	inv := &protocol.Invocation{Target: "broadcast"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.SendAll("bench", NewPayload(inv), nil)
	}
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
