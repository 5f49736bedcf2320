package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

const (
	opConnAdded uint8 = iota + 1
	opConnRemoved
	opJoined
	opLeft
)

// change is one change of the local index to mirror into Redis.
type change struct {
	op                   uint8
	hub, id, user, group string
}

// stateWriter mirrors the local index into Redis from one goroutine, batching the
// changes that queued up meanwhile into one pipeline. The registry tells it about
// changes under its locks, so enqueue only appends.
//
// When a write fails, the writer turns dirty: queued changes are dropped and, once
// Redis answers again, the whole index is written anew under a new epoch of the
// instance (a resync), after which the old epoch's records are deleted.
type stateWriter struct {
	b *RedisBroker

	mu       sync.Mutex
	pending  []change
	seq      uint64        // changes enqueued
	written  uint64        // changes written or made moot by a resync
	dirty    bool          // a write failed: resync before anything else
	err      error         // why, while dirty
	progress chan struct{} // closed and replaced whenever written or dirty changes
	wake     chan struct{}
	resyncs  atomic.Int64
}

func newStateWriter(b *RedisBroker) *stateWriter {
	return &stateWriter{b: b, progress: make(chan struct{}), wake: make(chan struct{}, 1)}
}

func (w *stateWriter) enqueue(c change) {
	w.mu.Lock()
	w.pending = append(w.pending, c)
	w.seq++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// signalLocked wakes the flush waiters.
func (w *stateWriter) signalLocked() {
	close(w.progress)
	w.progress = make(chan struct{})
}

func (w *stateWriter) markDirty() {
	w.mu.Lock()
	if !w.dirty {
		w.dirty, w.err = true, fmt.Errorf("%w: cluster state is being re-registered", ErrUnavailable)
		w.signalLocked()
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// flush waits until every change enqueued before the call is in Redis.
func (w *stateWriter) flush(ctx context.Context) error {
	w.mu.Lock()
	target := w.seq
	for {
		if w.dirty {
			err := w.err
			w.mu.Unlock()
			return err
		}
		if w.written >= target {
			w.mu.Unlock()
			return nil
		}
		ch := w.progress
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: state write: %w", ErrUnavailable, ctx.Err())
		}
		w.mu.Lock()
	}
}

func (w *stateWriter) run(ctx context.Context) {
	defer w.b.done.Done()
	retry := time.NewTicker(250 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-retry.C:
		}
		w.mu.Lock()
		dirty := w.dirty
		batch, upto := w.pending, w.seq
		w.pending = nil
		w.mu.Unlock()
		if dirty {
			if err := w.resync(ctx); err != nil {
				_ = w.b.failed(err)
			}
			continue
		}
		if len(batch) == 0 {
			continue
		}
		err := w.write(ctx, batch)
		w.mu.Lock()
		if err != nil && !w.dirty {
			w.dirty, w.err = true, fmt.Errorf("%w: state write: %w", ErrUnavailable, err)
		}
		w.written = upto
		w.signalLocked()
		w.mu.Unlock()
		if err != nil {
			_ = w.b.failed(err)
		}
	}
}

// cmds builds the commands of one change under instance inst.
func (w *stateWriter) cmds(dst rueidis.Commands, inst string, c change) rueidis.Commands {
	b, k := w.b.cmd.B(), w.b.k
	refs := k.refs(inst)
	switch c.op {
	case opConnAdded:
		ck := k.conn(c.hub, c.id)
		dst = append(dst, b.Set().Key(ck).Value(inst+"\n"+c.user).Build(),
			b.Sadd().Key(refs).Member("s"+ck).Build())
		if c.user != "" {
			uk := k.user(c.hub, c.user)
			dst = append(dst, b.Hset().Key(uk).FieldValue().FieldValue(c.id, inst).Build(),
				b.Sadd().Key(refs).Member("h"+uk+"\x00"+c.id).Build())
		}
	case opConnRemoved:
		ck := k.conn(c.hub, c.id)
		dst = append(dst, b.Del().Key(ck).Build(), b.Srem().Key(refs).Member("s"+ck).Build())
		if c.user != "" {
			uk := k.user(c.hub, c.user)
			dst = append(dst, b.Hdel().Key(uk).Field(c.id).Build(),
				b.Srem().Key(refs).Member("h"+uk+"\x00"+c.id).Build())
		}
	case opJoined:
		gk := k.group(c.hub, c.group)
		dst = append(dst, b.Hset().Key(gk).FieldValue().FieldValue(c.id, inst+"\n"+c.user).Build(),
			b.Sadd().Key(refs).Member("h"+gk+"\x00"+c.id).Build())
	case opLeft:
		gk := k.group(c.hub, c.group)
		dst = append(dst, b.Hdel().Key(gk).Field(c.id).Build(),
			b.Srem().Key(refs).Member("h"+gk+"\x00"+c.id).Build())
	}
	return dst
}

// batchCommands bounds one pipeline.
const batchCommands = 2048

func (w *stateWriter) exec(ctx context.Context, cmds rueidis.Commands) error {
	for len(cmds) > 0 {
		n := min(len(cmds), batchCommands)
		octx, cancel := w.b.opCtx(ctx)
		for _, r := range w.b.cmd.DoMulti(octx, cmds[:n]...) {
			if err := r.Error(); err != nil {
				cancel()
				return err
			}
		}
		cancel()
		cmds = cmds[n:]
	}
	return nil
}

func (w *stateWriter) write(ctx context.Context, batch []change) error {
	inst := w.b.instance()
	cmds := make(rueidis.Commands, 0, 4*len(batch))
	for _, c := range batch {
		cmds = w.cmds(cmds, inst, c)
	}
	return w.exec(ctx, cmds)
}

// resync writes the whole local index under a new epoch, then deletes the old
// epoch's records. Changes queued before it started are in the snapshot; those
// queued after are written after it, in order.
func (w *stateWriter) resync(ctx context.Context) error {
	b := w.b
	if b.reg == nil {
		return nil
	}
	w.mu.Lock()
	w.pending = nil
	snap := w.seq
	w.mu.Unlock()
	old := b.instance()
	inst := b.opts.NodeID + " " + newEpoch()
	var cmds rueidis.Commands
	b.reg.Each(func(hubName, id, user string, groups []string) {
		cmds = w.cmds(cmds, inst, change{op: opConnAdded, hub: hubName, id: id, user: user})
		for _, g := range groups {
			cmds = w.cmds(cmds, inst, change{op: opJoined, hub: hubName, id: id, user: user, group: g})
		}
	})
	c := b.cmd
	cmds = append(cmds,
		c.B().Zadd().Key(b.k.nodes()).ScoreMember().ScoreMember(float64(time.Now().UnixMilli()), inst).Build(),
		c.B().Hset().Key(b.k.addrs()).FieldValue().FieldValue(inst, *b.address.Load()).Build())
	if err := w.exec(ctx, cmds); err != nil {
		return err
	}
	b.mu.Lock()
	b.inst = inst
	b.live[inst] = time.Now().UnixMilli()
	delete(b.live, old)
	b.mu.Unlock()
	octx, cancel := b.opCtx(ctx)
	if n, err := c.Do(octx, c.B().Zrem().Key(b.k.nodes()).Member(old).Build()).AsInt64(); err == nil && n == 1 {
		b.cleanup(octx, old)
	}
	cancel()
	w.mu.Lock()
	w.dirty, w.err = false, nil
	w.written = max(w.written, snap)
	w.signalLocked()
	w.mu.Unlock()
	w.resyncs.Add(1)
	b.log.Info("cluster: node registered again", slog.Int("commands", len(cmds)))
	return nil
}
