package upstream

import (
	"sync"
	"time"
)

// keyedLimit bounds the calls in flight per key (a hub, or a rule, hub and event), so
// that one slow function cannot take every slot of the others. Only keys with calls in
// flight have an entry: the map is bounded by the calls in flight, whatever names
// clients invoke.
//
// Callers that wait for a slot of a key line up in order; a released slot goes to the
// first of them directly (it never becomes free in between, so a newcomer cannot take
// it), and only that one is woken.
type keyedLimit struct {
	max int

	mu     sync.Mutex
	counts map[string]int        // slots taken, per key
	queues map[string]*slotQueue // keys someone waits for
}

// slotQueue is the line of one key: waiters in arrival order, with those that gave up
// still in it (skipped when a slot is handed on) until they reach the front.
type slotQueue struct {
	waiters []*slotWaiter
	live    int // waiters that still wait
}

type slotWaiter struct {
	granted chan struct{} // closed when a slot is handed to this waiter
	gone    bool          // gave up (under the limit's mutex)
}

func newKeyedLimit(max int) *keyedLimit {
	return &keyedLimit{max: max, counts: make(map[string]int), queues: make(map[string]*slotQueue)}
}

// tryAcquire takes a slot of key without waiting; false when key is at its limit.
func (l *keyedLimit) tryAcquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[key] >= l.max {
		return false
	}
	l.counts[key]++
	return true
}

// full reports whether key is at its limit now (a hint: it may change at once).
func (l *keyedLimit) full(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[key] >= l.max
}

// lineFull reports whether key is at its limit with at least n callers already
// waiting for it (a hint, as full).
func (l *keyedLimit) lineFull(key string, n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[key] < l.max {
		return false
	}
	if n <= 0 {
		return true
	}
	q := l.queues[key]
	return q != nil && q.live >= n
}

// acquire takes a slot of key, waiting for one until stop is closed (then false).
func (l *keyedLimit) acquire(key string, stop <-chan struct{}) bool {
	return l.acquireWithin(key, stop, nil, -1)
}

// acquireWithin takes a slot of key, waiting for one while fewer than lineMax others
// wait before it (lineMax < 0: any number) and until stop is closed or expire fires
// (nil: never). false means no slot was taken.
func (l *keyedLimit) acquireWithin(key string, stop <-chan struct{}, expire <-chan time.Time, lineMax int) bool {
	l.mu.Lock()
	if l.counts[key] < l.max {
		l.counts[key]++
		l.mu.Unlock()
		return true
	}
	q := l.queues[key]
	if q == nil {
		q = &slotQueue{}
		l.queues[key] = q
	}
	if lineMax >= 0 && q.live >= lineMax {
		l.dropQueueLocked(key, q)
		l.mu.Unlock()
		return false
	}
	w := &slotWaiter{granted: make(chan struct{})}
	q.waiters = append(q.waiters, w)
	q.live++
	l.mu.Unlock()

	select {
	case <-w.granted:
		return true
	case <-stop:
	case <-expire:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-w.granted: // handed a slot while giving up: it is this caller's now
		return true
	default:
	}
	w.gone = true
	q.live--
	l.dropQueueLocked(key, q)
	return false
}

// dropQueueLocked forgets key's line once nobody waits in it.
func (l *keyedLimit) dropQueueLocked(key string, q *slotQueue) {
	if q.live == 0 {
		delete(l.queues, key)
	}
}

func (l *keyedLimit) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if q := l.queues[key]; q != nil {
		for len(q.waiters) > 0 {
			w := q.waiters[0]
			q.waiters[0] = nil
			q.waiters = q.waiters[1:]
			if w.gone {
				continue
			}
			// The slot passes to the first waiter: the count stays as it is.
			q.live--
			l.dropQueueLocked(key, q)
			close(w.granted)
			return
		}
	}
	if n := l.counts[key] - 1; n > 0 {
		l.counts[key] = n
	} else {
		delete(l.counts, key)
	}
}
