package hub

import (
	"container/heap"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for persistent user-group memberships added without a ttl.
const (
	DefaultUserGroupLifetime  = 365 * 24 * time.Hour
	DefaultMaxUserGroupsNoTTL = 100
)

// UserGroupOptions configures a UserGroups store; the zero value is usable.
type UserGroupOptions struct {
	Now func() time.Time // clock for expiry; nil = time.Now
	// Lifetime is how long a membership added without ttl lasts (default 1 year).
	Lifetime time.Duration
	// MaxNoTTL is how many memberships without ttl one user keeps, most recently
	// updated first (default 100).
	MaxNoTTL int
}

// UserGroup names one persistent membership.
type UserGroup struct {
	Hub, User, Group string
}

// UserGroups holds persistent user-group memberships (a user is in a group for a
// while, whether or not it is connected) and their expiry. It is separate from the
// connection index: the records are cluster state that outlives connections, the
// index is what one node holds. It is safe for concurrent use.
type UserGroups struct {
	now      func() time.Time
	lifetime time.Duration
	maxNoTTL int

	mu      sync.Mutex
	records map[string]map[string]map[string]*userGroup // hub -> user -> group
	count   int
	seq     uint64
	heap    expiryHeap // records by expiry time, with stale entries
	// next is the earliest expiry (unix nanoseconds), read without the lock so that
	// callers pay one atomic load when nothing is due.
	next atomic.Int64
}

type userGroup struct {
	expires time.Time
	updated uint64 // seq when last added; orders the no-ttl cap and detects stale heap entries
	noTTL   bool
}

// NewUserGroups returns an empty store.
func NewUserGroups(opts UserGroupOptions) *UserGroups {
	u := &UserGroups{now: opts.Now, lifetime: opts.Lifetime, maxNoTTL: opts.MaxNoTTL,
		records: make(map[string]map[string]map[string]*userGroup)}
	if u.now == nil {
		u.now = time.Now
	}
	if u.lifetime <= 0 {
		u.lifetime = DefaultUserGroupLifetime
	}
	if u.maxNoTTL <= 0 {
		u.maxNoTTL = DefaultMaxUserGroupsNoTTL
	}
	u.next.Store(math.MaxInt64)
	return u
}

// Now is the store's clock.
func (u *UserGroups) Now() time.Time { return u.now() }

// Add records that user is in group until now+ttl, or for the configured lifetime
// when ttl is nil. A user keeps only the most recently updated memberships without
// ttl; dropped lists the groups that fell off that cap. ttl must be nil or positive.
func (u *UserGroups) Add(hub, user, group string, ttl *time.Duration) (dropped []string) {
	hub = strings.ToLower(hub)
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	rec := u.recordLocked(hub, user, group)
	u.seq++
	rec.updated = u.seq
	rec.noTTL = ttl == nil
	if rec.noTTL {
		rec.expires = now.Add(u.lifetime)
	} else {
		rec.expires = now.Add(*ttl)
	}
	u.schedule(hub, user, group, rec)
	if !rec.noTTL {
		return nil
	}
	recs := u.records[hub][user]
	n := 0
	for _, r := range recs {
		if r.noTTL {
			n++
		}
	}
	for ; n > u.maxNoTTL; n-- {
		oldest, oldestSeq := "", uint64(math.MaxUint64)
		for g, r := range recs {
			if r.noTTL && r.updated < oldestSeq {
				oldest, oldestSeq = g, r.updated
			}
		}
		u.deleteLocked(hub, user, oldest)
		dropped = append(dropped, oldest)
	}
	return dropped
}

// AddWithin is Add refused, with a *GroupLimitError and nothing recorded, when the
// user would then have more than limit live memberships (0 = unlimited). A
// membership the user already has, or one that pushes the oldest without ttl off
// their cap, adds none.
func (u *UserGroups) AddWithin(hub, user, group string, ttl *time.Duration, limit int) ([]string, error) {
	if limit > 0 && u.wouldExceed(strings.ToLower(hub), user, group, ttl == nil, limit) {
		return nil, &GroupLimitError{Limit: limit, User: true}
	}
	return u.Add(hub, user, group, ttl), nil
}

// wouldExceed reports whether adding user to group leaves the user more than limit
// live memberships.
func (u *UserGroups) wouldExceed(hub, user, group string, noTTL bool, limit int) bool {
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	live, liveNoTTL := 0, 0
	for g, r := range u.records[hub][user] {
		if g == group || !now.Before(r.expires) {
			continue
		}
		live++
		if r.noTTL {
			liveNoTTL++
		}
	}
	after := live + 1
	if noTTL && liveNoTTL+1 > u.maxNoTTL {
		after -= liveNoTTL + 1 - u.maxNoTTL
	}
	return after > limit
}

// Remove forgets one membership.
func (u *UserGroups) Remove(hub, user, group string) {
	hub = strings.ToLower(hub)
	u.mu.Lock()
	u.deleteLocked(hub, user, group)
	u.mu.Unlock()
}

// RemoveAll forgets every membership of user.
func (u *UserGroups) RemoveAll(hub, user string) {
	hub = strings.ToLower(hub)
	u.mu.Lock()
	defer u.mu.Unlock()
	byUser := u.records[hub]
	u.count -= len(byUser[user])
	delete(byUser, user)
}

// Has reports whether user has a live membership of group.
func (u *UserGroups) Has(hub, user, group string) bool {
	hub = strings.ToLower(hub)
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	rec := u.records[hub][user][group]
	return rec != nil && now.Before(rec.expires)
}

// Groups lists the live memberships of user, in no particular order.
func (u *UserGroups) Groups(hub, user string) []string {
	hub = strings.ToLower(hub)
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	recs := u.records[hub][user]
	out := make([]string, 0, len(recs))
	for g, rec := range recs {
		if now.Before(rec.expires) {
			out = append(out, g)
		}
	}
	return out
}

// Due reports whether a membership may have expired; it costs one clock read and
// one atomic load.
func (u *UserGroups) Due() bool { return u.now().UnixNano() >= u.next.Load() }

// Expire forgets the memberships that expired by now and returns them, at
// O(log n) per expired entry.
func (u *UserGroups) Expire() []UserGroup {
	now := u.now().UnixNano()
	if now < u.next.Load() {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []UserGroup
	for len(u.heap) > 0 && u.heap[0].at <= now {
		e := heap.Pop(&u.heap).(expiryEntry)
		rec := u.records[e.hub][e.user][e.group]
		if rec == nil || rec.updated != e.updated {
			continue // stale: refreshed or removed since scheduled
		}
		u.deleteLocked(e.hub, e.user, e.group)
		out = append(out, UserGroup{Hub: e.hub, User: e.user, Group: e.group})
	}
	u.publishNext()
	return out
}

// deleteLocked forgets one record; its heap entry goes stale.
func (u *UserGroups) deleteLocked(hub, user, group string) {
	recs := u.records[hub][user]
	if _, ok := recs[group]; !ok {
		return
	}
	delete(recs, group)
	u.count--
	if len(recs) == 0 {
		delete(u.records[hub], user)
	}
}

// expiryEntry schedules the expiry of one record. Entries are not removed when a
// record is refreshed or deleted; a popped entry whose updated stamp no longer
// matches the record is stale and ignored.
type expiryEntry struct {
	at               int64 // unix nanoseconds
	hub, user, group string
	updated          uint64
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

func (u *UserGroups) schedule(hub, user, group string, rec *userGroup) {
	heap.Push(&u.heap, expiryEntry{at: rec.expires.UnixNano(), hub: hub, user: user, group: group, updated: rec.updated})
	// Stale entries pile up when the same memberships are refreshed repeatedly;
	// rebuild from the records once they outnumber live ones.
	if len(u.heap) > 2*u.count+64 {
		q := make(expiryHeap, 0, u.count)
		for h, byUser := range u.records {
			for usr, recs := range byUser {
				for g, r := range recs {
					q = append(q, expiryEntry{at: r.expires.UnixNano(), hub: h, user: usr, group: g, updated: r.updated})
				}
			}
		}
		heap.Init(&q)
		u.heap = q
	}
	u.publishNext()
}

func (u *UserGroups) publishNext() {
	next := int64(math.MaxInt64)
	if len(u.heap) > 0 {
		next = u.heap[0].at
	}
	u.next.Store(next)
}

// Set records a membership with a known end, as decided elsewhere (by the
// cluster's shared store): no cap is applied. A membership that already ended is
// forgotten instead.
func (u *UserGroups) Set(hub, user, group string, expires time.Time, noTTL bool) {
	hub = strings.ToLower(hub)
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.now().Before(expires) {
		u.deleteLocked(hub, user, group)
		return
	}
	rec := u.recordLocked(hub, user, group)
	u.seq++
	rec.updated, rec.expires, rec.noTTL = u.seq, expires, noTTL
	u.schedule(hub, user, group, rec)
}

// recordLocked returns the record of user in group, creating it (and its hub and user
// maps) when absent; u.mu is held.
func (u *UserGroups) recordLocked(hub, user, group string) *userGroup {
	byUser := u.records[hub]
	if byUser == nil {
		byUser = make(map[string]map[string]*userGroup)
		u.records[hub] = byUser
	}
	recs := byUser[user]
	if recs == nil {
		recs = make(map[string]*userGroup)
		byUser[user] = recs
	}
	rec := recs[group]
	if rec == nil {
		rec = &userGroup{}
		recs[group] = rec
		u.count++
	}
	return rec
}
