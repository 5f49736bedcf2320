package hub

import (
	"container/heap"
	"math"
	"time"
)

// expiryEntry schedules the expiry of one persistent user-group record. Entries
// are not removed when a record is refreshed or deleted; a popped entry whose
// updated stamp no longer matches the record is stale and ignored.
type expiryEntry struct {
	at      int64 // unix nanoseconds
	user    string
	group   string
	updated uint64
}

type expiryHeap []expiryEntry

func (q expiryHeap) Len() int           { return len(q) }
func (q expiryHeap) Less(i, j int) bool { return q[i].at < q[j].at }
func (q expiryHeap) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryHeap) Push(x any)        { *q = append(*q, x.(expiryEntry)) }
func (q *expiryHeap) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// scheduleLocked records when rec expires and publishes the earliest expiry.
func (h *hubState) scheduleLocked(user, group string, rec *userGroup) {
	heap.Push(&h.expiries, expiryEntry{at: rec.expires.UnixNano(), user: user, group: group, updated: rec.updated})
	// Stale entries pile up when the same memberships are refreshed repeatedly;
	// rebuild from the records once they outnumber live ones.
	if len(h.expiries) > 2*h.records+64 {
		h.rebuildExpiriesLocked()
	}
	h.publishNextLocked()
}

func (h *hubState) rebuildExpiriesLocked() {
	q := make(expiryHeap, 0, h.records)
	for user, records := range h.userGroups {
		for group, rec := range records {
			q = append(q, expiryEntry{at: rec.expires.UnixNano(), user: user, group: group, updated: rec.updated})
		}
	}
	heap.Init(&q)
	h.expiries = q
}

func (h *hubState) publishNextLocked() {
	next := int64(math.MaxInt64)
	if len(h.expiries) > 0 {
		next = h.expiries[0].at
	}
	h.nextExpiry.Store(next)
}

// sweepIfDue expires user-group memberships when the earliest expiry has passed.
// Without anything due it costs one clock read and one atomic load.
func (r *Registry) sweepIfDue(h *hubState) {
	now := r.now()
	if now.UnixNano() < h.nextExpiry.Load() {
		return
	}
	h.mu.Lock()
	r.sweepLocked(h, now)
	h.mu.Unlock()
}

// sweepLocked drops the persistent memberships that expired by now, with the
// group memberships they gave connections. It costs O(log n) per expired entry.
func (r *Registry) sweepLocked(h *hubState, now time.Time) {
	nowNano := now.UnixNano()
	if nowNano < h.nextExpiry.Load() {
		return
	}
	for len(h.expiries) > 0 && h.expiries[0].at <= nowNano {
		e := heap.Pop(&h.expiries).(expiryEntry)
		rec := h.userGroups[e.user][e.group]
		if rec == nil || rec.updated != e.updated {
			continue // stale: refreshed or removed since scheduled
		}
		h.dropRecordLocked(e.user, e.group)
	}
	h.publishNextLocked()
}
