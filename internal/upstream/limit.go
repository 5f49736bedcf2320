package upstream

import "sync"

// keyedLimit bounds the calls in flight per key (a hub, or a rule, hub and event), so
// that one slow function cannot take every slot of the others. Only keys with calls in
// flight have an entry: the map is bounded by the calls in flight, whatever names
// clients invoke.
type keyedLimit struct {
	max int

	mu      sync.Mutex
	counts  map[string]int
	freed   chan struct{} // closed (and replaced) when a slot is released and someone waits
	waiters int           // acquire calls waiting on freed
}

func newKeyedLimit(max int) *keyedLimit {
	return &keyedLimit{max: max, counts: make(map[string]int), freed: make(chan struct{})}
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

// acquire takes a slot of key, waiting for one until stop is closed (then false).
func (l *keyedLimit) acquire(key string, stop <-chan struct{}) bool {
	for {
		l.mu.Lock()
		if l.counts[key] < l.max {
			l.counts[key]++
			l.mu.Unlock()
			return true
		}
		freed := l.freed
		l.waiters++
		l.mu.Unlock()
		select {
		case <-freed:
		case <-stop:
			l.mu.Lock()
			l.waiters--
			l.mu.Unlock()
			return false
		}
		l.mu.Lock()
		l.waiters--
		l.mu.Unlock()
	}
}

func (l *keyedLimit) release(key string) {
	l.mu.Lock()
	if n := l.counts[key] - 1; n > 0 {
		l.counts[key] = n
	} else {
		delete(l.counts, key)
	}
	// Only connection events wait; invocations never do. Replacing the channel on every
	// release cost an allocation per call for nobody.
	if l.waiters > 0 {
		close(l.freed)
		l.freed = make(chan struct{})
	}
	l.mu.Unlock()
}
