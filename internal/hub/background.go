package hub

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Background lets the fan-outs of a payload return as soon as its frame is queued
// to every recipient: the writes (the Flush of every Queuer whose writer the fan-out
// took over) go on in the background, and done runs once the publisher called Close
// and every such write is over. A REST broadcast is answered after the queueing,
// which is bounded by the number of recipients times a queue push, while its
// admission slot is given back by done, after the writes (docs/performance.md, S1).
//
// Queueing before answering keeps the order a caller sees: a message sent after the
// answer to an earlier one is queued behind it at every recipient.
type Background struct {
	mu      sync.Mutex
	pending int  // background flushes started and not finished
	closed  bool // Close was called: no more flushes start, done runs at zero
	done    func()
}

// NewBackground returns a Background that calls done (may be nil) once, after Close
// and the last background flush.
func NewBackground(done func()) *Background {
	return &Background{done: done}
}

// Close tells b that no fan-out of its payload starts any more; done runs now when no
// flush is pending, else when the last one ends.
func (b *Background) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	run := b.pending == 0
	b.mu.Unlock()
	if run && b.done != nil {
		b.done()
	}
}

// start counts one background flush; false when b is closed (the caller flushes
// inline then).
func (b *Background) start() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.pending++
	return true
}

func (b *Background) finish() {
	b.mu.Lock()
	b.pending--
	run := b.closed && b.pending == 0
	b.mu.Unlock()
	if run && b.done != nil {
		b.done()
	}
}

// FlushInBackground makes the fan-outs of p (SendAll, SendGroup, SendUser) return
// once the frame is queued, with the writes finished in the background under b.
// Call it before the payload is handed out; the caller must Close b afterwards.
func (p *Payload) FlushInBackground(b *Background) { p.bg = b }

// flushing runs the registry's background flushes, one sweep at a time, and counts
// them so that a shutdown can wait for them (WaitFlushes).
//
// One sweep at a time (a sweep is itself spread over GOMAXPROCS goroutines, see
// flushAll) is what batches under load: while a sweep writes, the broadcasts that
// follow queue their frames behind it, to connections whose writer the running
// sweep or a waiting one holds, and the next sweep writes all of them in one write
// per connection. The longer a sweep takes, the more frames each write carries;
// when sweeps keep up, each broadcast gets its own at once. Concurrent sweeps
// instead shared the CPU and each wrote about one frame per write
// (docs/performance.md, S1).
type flushing struct {
	mu      sync.Mutex
	n       int            // sweeps waiting or running
	waiting []pendingSweep // in arrival order
	running bool           // the sweep goroutine is on
	idle    chan struct{}  // closed when n drops to zero; nil while nobody waits
}

// pendingSweep is the connections one fan-out took the writer of.
type pendingSweep struct {
	buf *[]Client
	bg  *Background
}

// sweep hands the connections in buf to the sweep goroutine, starting it if it is
// not running; bg is told when they are written.
func (f *flushing) sweep(r *Registry, buf *[]Client, bg *Background) {
	f.mu.Lock()
	f.n++
	f.waiting = append(f.waiting, pendingSweep{buf, bg})
	start := !f.running
	f.running = true
	f.mu.Unlock()
	if start {
		go f.run(r)
	}
}

// run writes the waiting sweeps until none is left. The sweeps that waited together
// are written in one pass (write): their connections are disjoint (a connection's
// writer is held by one fan-out at a time), and one pass spreads them all over the
// flush goroutines, where the short lists of the broadcasts that follow a long sweep
// would each have been written by one goroutine.
func (f *flushing) run(r *Registry) {
	var batch []pendingSweep
	for {
		f.mu.Lock()
		if len(f.waiting) == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		batch, f.waiting = f.waiting, batch[:0]
		f.mu.Unlock()
		f.write(r, batch)
		clear(batch)
	}
}

// flushChunk is how many connections a flush goroutine of a pass takes at a time.
const flushChunk = 256

// write is one pass over the sweeps of batch: their connections in arrival order,
// spread over up to GOMAXPROCS goroutines that take flushChunk of them at a time, each
// sweep finished (its Background told, its admission slot given back) as soon as its
// own connections are written rather than when the whole pass is. Under overload a
// pass holds the sweeps of all the broadcasts that came during the one before, and
// each kept its slot until the last of them was written: the server refused more
// with 503 than it had to (docs/performance.md, S1).
func (f *flushing) write(r *Registry, batch []pendingSweep) {
	total := 0
	for _, s := range batch {
		total += len(*s.buf)
	}
	workers := min(runtime.GOMAXPROCS(0), total/flushMinPerWorker)
	if workers <= 1 {
		for _, s := range batch {
			r.flushList(*s.buf)
			f.finish(r, s)
		}
		return
	}
	type chunk struct{ sweep, from, to int }
	chunks := make([]chunk, 0, total/flushChunk+len(batch))
	left := make([]atomic.Int32, len(batch)) // chunks of each sweep not written yet
	for i, s := range batch {
		n := len(*s.buf)
		for from := 0; from < n; from += flushChunk {
			chunks = append(chunks, chunk{i, from, min(from+flushChunk, n)})
			left[i].Add(1)
		}
		if n == 0 {
			f.finish(r, s)
		}
	}
	var next atomic.Int64
	work := func() {
		for {
			j := int(next.Add(1) - 1)
			if j >= len(chunks) {
				return
			}
			ch := chunks[j]
			r.flushList((*batch[ch.sweep].buf)[ch.from:ch.to])
			if left[ch.sweep].Add(-1) == 0 {
				f.finish(r, batch[ch.sweep])
			}
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// finish ends sweep s, whose connections are written.
func (f *flushing) finish(r *Registry, s pendingSweep) {
	r.putBuf(s.buf)
	s.bg.finish()
	f.done()
}

func (f *flushing) done() {
	f.mu.Lock()
	f.n--
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

// WaitFlushes waits until no background flush (see Background) is running, or ctx
// ends (then it returns ctx's error).
func (r *Registry) WaitFlushes(ctx context.Context) error {
	f := &r.flushing
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
