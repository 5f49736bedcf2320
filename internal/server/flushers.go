package server

import (
	"log/slog"
	"runtime"
	"sync"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/transport"
)

// flushers lends the registry's flush goroutines a Flusher that gathers their
// WebSocket writes into transport.SendBatches (one io_uring each), so that a
// broadcast costs a system call per few hundred deliveries instead of one each
// (docs/performance.md, S1, "Gathered sends"). Where io_uring is unavailable, every
// flush is direct. The batches are kept for reuse, at most maxFlushers of them, and
// released by close.
type flushers struct {
	log *slog.Logger // the server's
	// newBatch makes a batch; nil = transport.NewSendBatch (tests make it fail).
	newBatch func() (*transport.SendBatch, error)

	mu     sync.Mutex
	free   []*batchFlusher
	made   int  // batches in use or free
	closed bool // no more batches
	off    bool // io_uring failed: direct flushes only
}

// maxFlushers bounds the batches (each an io_uring descriptor and about 25 KB):
// enough for the flush goroutines of a few concurrent fan-outs.
func maxFlushers() int { return 4 * runtime.GOMAXPROCS(0) }

// get returns a Flusher for one flush goroutine of one fan-out.
func (f *flushers) get() hub.Flusher {
	f.mu.Lock()
	if f.closed || f.off {
		f.mu.Unlock()
		return hub.DirectFlusher{}
	}
	if n := len(f.free); n > 0 {
		bf := f.free[n-1]
		f.free[n-1] = nil
		f.free = f.free[:n-1]
		f.mu.Unlock()
		return bf
	}
	if f.made >= maxFlushers() {
		f.mu.Unlock()
		return hub.DirectFlusher{}
	}
	f.made++
	f.mu.Unlock()
	newBatch := f.newBatch
	if newBatch == nil {
		newBatch = transport.NewSendBatch
	}
	sb, err := newBatch()
	if err != nil {
		f.mu.Lock()
		f.made--
		first := !f.off
		f.off = true
		f.mu.Unlock()
		if first {
			f.log.Info("io_uring unavailable: one send(2) per delivery", slog.Any("error", err))
		}
		return hub.DirectFlusher{}
	}
	return &batchFlusher{f: f, sb: sb}
}

// put takes back a batch whose writes are done; a failed one is released.
func (f *flushers) put(bf *batchFlusher) {
	f.mu.Lock()
	broken := bf.sb.Err()
	if !f.closed && broken == nil {
		f.free = append(f.free, bf)
		f.mu.Unlock()
		return
	}
	f.made--
	f.mu.Unlock()
	if broken != nil {
		f.log.Warn("gathered sends failed; the batch is dropped", slog.Any("error", broken))
	}
	_ = bf.sb.Close()
}

// close releases the free batches, and each lent one when it comes back.
func (f *flushers) close() {
	f.mu.Lock()
	f.closed = true
	free := f.free
	f.free = nil
	f.made -= len(free)
	f.mu.Unlock()
	for _, bf := range free {
		_ = bf.sb.Close()
	}
}

// batchFlusher gathers the writes of one flush goroutine's connections.
type batchFlusher struct {
	f  *flushers
	sb *transport.SendBatch
}

func (b *batchFlusher) Flush(c hub.Client) {
	if cc, ok := c.(*conn); ok {
		cc.flushInto(b.sb)
		return
	}
	c.(hub.Queuer).Flush()
}

func (b *batchFlusher) Done() {
	b.sb.Submit()
	b.f.put(b)
}
