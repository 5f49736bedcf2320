package hub

import (
	"log/slog"
	"runtime"
	"sync"
	"time"
)

// idSet answers "is this id excluded" without allocating for short lists, which
// is what callers send in practice.
type idSet struct {
	list []string
	m    map[string]struct{}
}

const idSetLinearMax = 8

func newIDSet(ids []string) idSet {
	if len(ids) <= idSetLinearMax {
		return idSet{list: ids}
	}
	m := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	return idSet{m: m}
}

func (s idSet) has(id string) bool {
	if s.m != nil {
		_, ok := s.m[id]
		return ok
	}
	for _, x := range s.list {
		if x == id {
			return true
		}
	}
	return false
}

func (r *Registry) getBuf() *[]Client { return r.recipientBuf.Get().(*[]Client) }

func (r *Registry) putBuf(b *[]Client) {
	clear(*b) // drop references so closed connections can be collected
	*b = (*b)[:0]
	r.recipientBuf.Put(b)
}

// SendAll sends p to every connection of hub except the excluded connection ids.
func (r *Registry) SendAll(hub string, p *Payload, excluded []string) {
	h := r.hub(hub, false)
	if h == nil {
		return
	}
	ex := newIDSet(excluded)
	buf := r.getBuf()
	h.mu.RLock()
	for id, cn := range h.conns {
		if !ex.has(id) {
			*buf = append(*buf, cn.c)
		}
	}
	h.mu.RUnlock()
	r.deliver(hub, buf, p)
}

// SendUser sends p to every connection of user in hub; an offline user is no error.
func (r *Registry) SendUser(hub, user string, p *Payload) {
	h := r.hub(hub, false)
	if h == nil {
		return
	}
	buf := r.getBuf()
	h.mu.RLock()
	for _, cn := range h.userConns(user) {
		*buf = append(*buf, cn.c)
	}
	h.mu.RUnlock()
	r.deliver(hub, buf, p)
}

// SendConnection sends p to one connection. It reports false when there is no
// such connection, the payload has no frame for its protocol, or the frame was
// dropped.
func (r *Registry) SendConnection(hub, id string, p *Payload) bool {
	c, ok := r.Connection(hub, id)
	if !ok {
		return false
	}
	proto := c.Protocol()
	if proto == nil {
		r.logger.Warn("hub: connection has no protocol", slog.String("hub", hub), slog.String("connectionId", id))
		return false
	}
	frame, err := p.Frame(proto)
	if err != nil {
		r.logger.Warn("hub: cannot frame message", slog.String("hub", hub), slog.String("connectionId", id), slog.Any("error", err))
		return false
	}
	return c.Send(frame)
}

// SendGroup sends p to every connection in group except the excluded connection ids.
func (r *Registry) SendGroup(hub, group string, p *Payload, excluded []string) {
	h := r.hub(hub, false)
	if h == nil {
		return
	}
	ex := newIDSet(excluded)
	buf := r.getBuf()
	h.mu.RLock()
	for id, cn := range h.groups[group] {
		if !ex.has(id) {
			*buf = append(*buf, cn.c)
		}
	}
	h.mu.RUnlock()
	r.deliver(hub, buf, p)
}

// frameCacheSize covers every protocol this service speaks; more protocols still
// work and go through Payload's own cache.
const frameCacheSize = 4

type cachedFrame struct {
	name   string
	frame  []byte
	err    error
	logged bool
}

// deliver hands each recipient the frame of its protocol: queued to all of them
// first, then written (see Queuer), before it returns or, for a payload with a
// Background, by the registry's sweep goroutine (see flushing). It holds no lock: the recipients are a
// snapshot, in the caller's pooled buffer, which it reuses for the connections to
// flush and puts back. The per-call frame cache keeps the loop free of allocations
// and of contention on the Payload's mutex.
func (r *Registry) deliver(hub string, buf *[]Client, p *Payload) {
	recipients := *buf
	now := time.Now().UnixNano()
	var cache [frameCacheSize]cachedFrame
	n, k := 0, 0
	for _, c := range recipients {
		proto := c.Protocol()
		if proto == nil {
			r.logger.Warn("hub: connection has no protocol", slog.String("hub", hub), slog.String("connectionId", c.ID()))
			continue
		}
		name := proto.Name()
		var cf *cachedFrame
		for i := 0; i < n; i++ {
			if cache[i].name == name {
				cf = &cache[i]
				break
			}
		}
		if cf == nil {
			frame, err := p.Frame(proto)
			if n < frameCacheSize {
				cache[n] = cachedFrame{name: name, frame: frame, err: err}
				cf = &cache[n]
				n++
			} else {
				cf = &cachedFrame{name: name, frame: frame, err: err}
			}
		}
		if cf.err != nil {
			// Logged once per protocol per message, not once per recipient.
			if !cf.logged {
				cf.logged = true
				r.logger.Warn("hub: skipping recipients without a frame", slog.String("hub", hub),
					slog.String("protocol", name), slog.Any("error", cf.err))
			}
			continue
		}
		if q, ok := c.(Queuer); ok {
			if _, flush := q.Queue(cf.frame, now); flush {
				recipients[k] = c // k <= i: the slot was read already
				k++
			}
			continue
		}
		c.Send(cf.frame)
	}
	if k > 0 && p.bg != nil && p.bg.start() {
		clear(recipients[k:]) // putBuf clears what the sweep keeps
		*buf = recipients[:k]
		r.flushing.sweep(r, buf, p.bg)
		return
	}
	r.flushAll(recipients[:k])
	r.putBuf(buf)
}

// Queuer is a Client that can queue a frame and write it later. A fan-out queues the
// frame to every recipient first and then writes to the connections whose writer was
// idle, on its own goroutine (a few for a large fan-out; the registry's sweep for a
// payload with a Background) instead of starting a goroutine per recipient; frames
// queued meanwhile by other sends join those writes.
type Queuer interface {
	// Queue is Send without the write: when flush is true the frame is queued and
	// the caller must call Flush, soon, to get it written. now is the time (unix
	// ns) as the fan-out read it once for all its recipients.
	Queue(frame []byte, now int64) (ok, flush bool)
	Flush()
}

// flushMinPerWorker is the fewest connections a flush worker is started for: a
// goroutine start is worth it only over hundreds of writes.
const flushMinPerWorker = 512

// Flusher writes the frames queued to many Queuers together: the server gathers
// their socket writes into a few system calls. A flush goroutine gets one per
// fan-out, flushes each recipient through it, and calls Done at the end.
type Flusher interface {
	// Flush writes what c queued, now or by Done.
	Flush(c Client)
	// Done writes what is still gathered; the Flusher is not used again.
	Done()
}

// minGathered is the fewest recipients a Flusher is asked for.
const minGathered = 4

// DirectFlusher flushes each recipient at once, through its Queuer.Flush: what a
// fan-out does without Options.Flusher, and to fewer than minGathered recipients.
type DirectFlusher struct{}

// Flush flushes c now.
func (DirectFlusher) Flush(c Client) { c.(Queuer).Flush() }

// Done does nothing: every flush is done already.
func (DirectFlusher) Done() {}

// flushList flushes the recipients cs through one Flusher; a few go directly, where
// gathering their writes would save nothing.
func (r *Registry) flushList(cs []Client) {
	var f Flusher = DirectFlusher{}
	if r.newFlusher != nil && len(cs) >= minGathered {
		f = r.newFlusher()
	}
	for _, c := range cs {
		f.Flush(c)
	}
	f.Done()
}

// flushAll flushes every recipient, spread over up to GOMAXPROCS goroutines (the
// caller's included) so that a large fan-out's writes do not serialise on one core.
func (r *Registry) flushAll(recipients []Client) {
	workers := min(runtime.GOMAXPROCS(0), len(recipients)/flushMinPerWorker)
	if workers <= 1 {
		r.flushList(recipients)
		return
	}
	var wg sync.WaitGroup
	per := (len(recipients) + workers - 1) / workers
	for w := 1; w < workers; w++ {
		part := recipients[min(w*per, len(recipients)):min((w+1)*per, len(recipients))]
		wg.Go(func() { r.flushList(part) })
	}
	r.flushList(recipients[:per])
	wg.Wait()
}
