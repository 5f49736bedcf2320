package hub

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// gatedClient queues like the server's connections and holds every Flush until
// gate is closed, as a write to a socket that does not take it would.
type gatedClient struct {
	benchClient
	mu      sync.Mutex
	queued  []string
	written []string
	entered chan struct{} // signalled when a Flush starts (shared by the registry's clients)
	gate    chan struct{}
}

func (c *gatedClient) Queue(frame []byte, _ int64) (bool, bool) {
	c.mu.Lock()
	c.queued = append(c.queued, string(frame))
	c.mu.Unlock()
	return true, true
}

func (c *gatedClient) Flush() {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-c.gate
	c.mu.Lock()
	c.written = append(c.written, c.queued...)
	c.queued = nil
	c.mu.Unlock()
}

func (c *gatedClient) frames() (queued, written int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queued), len(c.written)
}

func gatedRegistry(t *testing.T, n int, gate chan struct{}) (*Registry, []*gatedClient) {
	t.Helper()
	r := New(nil)
	var cs []*gatedClient
	entered := make(chan struct{}, 1)
	for i := range n {
		c := &gatedClient{benchClient: benchClient{id: fmt.Sprint("c", i), proto: protocol.JSON()},
			entered: entered, gate: gate}
		r.Add(c)
		cs = append(cs, c)
	}
	return r, cs
}

// A fan-out of a payload with a Background returns once the frame is queued to every
// recipient, before any write completes; done runs after Close and the last write,
// once; WaitFlushes waits for the writes.
func TestBackgroundFanOutReturnsOnceQueued(t *testing.T) {
	gate := make(chan struct{})
	r, cs := gatedRegistry(t, 3, gate)
	var done atomic.Int32
	bg := NewBackground(func() { done.Add(1) })
	p := msg("a")
	p.FlushInBackground(bg)
	returned := make(chan struct{})
	go func() {
		r.SendAll("bench", p, nil)
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("SendAll waited for the writes")
	}
	for i, c := range cs {
		if q, w := c.frames(); q != 1 || w != 0 {
			t.Fatalf("client %d: %d queued, %d written when SendAll returned; want 1 queued, 0 written", i, q, w)
		}
	}
	<-cs[0].entered // a flush is blocked in its write
	bg.Close()
	if done.Load() != 0 {
		t.Fatal("done ran while a write was still blocked")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.WaitFlushes(ctx); err == nil {
		t.Fatal("WaitFlushes returned while a write was blocked")
	}
	close(gate)
	if err := r.WaitFlushes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if done.Load() != 1 {
		t.Fatalf("done ran %d times, want 1", done.Load())
	}
	for i, c := range cs {
		if q, w := c.frames(); q != 0 || w != 1 {
			t.Fatalf("client %d: %d queued, %d written after the flush; want 0, 1", i, q, w)
		}
	}
}

// Without a Background a fan-out writes before it returns (cluster commands, the
// registry's own callers); with one whose fan-outs flush nothing, done runs at Close.
func TestFanOutWithoutBackgroundFlushesInline(t *testing.T) {
	gate := make(chan struct{})
	close(gate)
	r, cs := gatedRegistry(t, 2, gate)
	r.SendAll("bench", msg("a"), nil)
	for i, c := range cs {
		if q, w := c.frames(); q != 0 || w != 1 {
			t.Fatalf("client %d: %d queued, %d written; want 0, 1", i, q, w)
		}
	}
	var done atomic.Int32
	bg := NewBackground(func() { done.Add(1) })
	p := msg("b")
	p.FlushInBackground(bg)
	r.SendAll("nohub", p, nil)
	bg.Close()
	bg.Close()
	if done.Load() != 1 {
		t.Fatalf("done ran %d times, want 1", done.Load())
	}
	// A payload handed out after Close (not the REST API's use) is written inline.
	r.SendAll("bench", p, nil)
	for i, c := range cs {
		if q, w := c.frames(); q != 0 || w != 2 {
			t.Fatalf("client %d: %d queued, %d written; want 0, 2", i, q, w)
		}
	}
	if done.Load() != 1 {
		t.Fatalf("done ran %d times, want 1", done.Load())
	}
}

// One payload delivered by two registries (two nodes on one in-memory broker) runs
// done once, after both background flushes.
func TestBackgroundSharedByTwoRegistries(t *testing.T) {
	gate := make(chan struct{})
	r1, _ := gatedRegistry(t, 2, gate)
	r2, _ := gatedRegistry(t, 2, gate)
	var done atomic.Int32
	bg := NewBackground(func() { done.Add(1) })
	p := msg("a")
	p.FlushInBackground(bg)
	r1.SendAll("bench", p, nil)
	r2.SendGroup("bench", "none", p, nil) // no recipient: nothing in the background
	r2.SendAll("bench", p, nil)
	bg.Close()
	if done.Load() != 0 {
		t.Fatal("done ran before the writes")
	}
	close(gate)
	for _, r := range []*Registry{r1, r2} {
		if err := r.WaitFlushes(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if done.Load() != 1 {
		t.Fatalf("done ran %d times, want 1", done.Load())
	}
}

// Sweeps that wait behind a running one are written together afterwards; each
// publisher's done runs once, after its frames were written. With 2,000 recipients
// the pass is spread over flush goroutines in chunks.
func TestWaitingSweepsAreWrittenTogether(t *testing.T) {
	for _, n := range []int{3, 2000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { testWaitingSweepsAreWrittenTogether(t, n) })
	}
}

func testWaitingSweepsAreWrittenTogether(t *testing.T, n int) {
	gate := make(chan struct{})
	r, cs := gatedRegistry(t, n, gate)
	var done [3]atomic.Int32
	bgs := make([]*Background, 3)
	for i := range bgs {
		bgs[i] = NewBackground(func() { done[i].Add(1) })
		p := msg(fmt.Sprint("m", i))
		p.FlushInBackground(bgs[i])
		r.SendAll("bench", p, nil)
		bgs[i].Close()
		if i == 0 {
			<-cs[0].entered // the first sweep is blocked in a write; the others wait
		}
	}
	for i := range done {
		if done[i].Load() != 0 {
			t.Fatalf("done %d ran before the writes", i)
		}
	}
	close(gate)
	if err := r.WaitFlushes(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range done {
		if done[i].Load() != 1 {
			t.Fatalf("done %d ran %d times, want 1", i, done[i].Load())
		}
	}
	for i, c := range cs {
		if q, w := c.frames(); q != 0 || w != 3 {
			t.Fatalf("client %d: %d queued, %d written; want 0, 3", i, q, w)
		}
	}
}

// Of the sweeps written in one pass, each is finished (its done run, its admission
// slot given back) once its own connections are written, not when the whole pass is:
// here the first waiting sweep is done while the second is still blocked in a write.
func TestWaitingSweepFinishesWithItsOwnWrites(t *testing.T) {
	r := New(nil)
	entered := make(chan struct{}, 1)
	gates := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{}), "c": make(chan struct{})}
	close(gates["b"])
	for name, gate := range gates {
		c := &gatedClient{benchClient: benchClient{id: name, proto: protocol.JSON()}, entered: entered, gate: gate}
		r.Add(c)
		if ok, err := r.AddToGroup("bench", name, name); !ok || err != nil {
			t.Fatalf("joining %s: %v %v", name, ok, err)
		}
	}
	var done [3]atomic.Int32
	bDone := make(chan struct{})
	send := func(i int, group string) {
		bg := NewBackground(func() {
			if done[i].Add(1) == 1 && i == 1 {
				close(bDone)
			}
		})
		p := msg(group)
		p.FlushInBackground(bg)
		r.SendGroup("bench", group, p, nil)
		bg.Close()
	}
	send(0, "a")
	<-entered // the first sweep is blocked in a's write
	send(1, "b")
	send(2, "c") // b's sweep and c's wait, in that order
	close(gates["a"])
	select {
	case <-bDone:
	case <-time.After(5 * time.Second):
		t.Fatal("b's sweep was not finished while c's write was blocked")
	}
	if done[2].Load() != 0 {
		t.Fatal("c's sweep finished before its write")
	}
	close(gates["c"])
	if err := r.WaitFlushes(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range done {
		if done[i].Load() != 1 {
			t.Fatalf("done %d ran %d times, want 1", i, done[i].Load())
		}
	}
}
