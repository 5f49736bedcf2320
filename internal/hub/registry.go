package hub

import (
	"io"
	"iter"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/signalbox-io/signalbox/protocol"
)

// Client is one live connection as the hub sees it; implemented by the server's
// connection type. Implementations should be pointer types: the registry compares
// clients to make Remove idempotent.
type Client interface {
	ID() string
	Hub() string
	UserID() string
	Protocol() protocol.Protocol
	// Send enqueues a frame in Protocol() without blocking; false means it was
	// dropped (the slow consumer closes itself). The frame is shared between
	// recipients and must not be modified or retained after being written.
	Send(frame []byte) bool
	// Close sends a Close message, then ends the transport.
	Close(reason string, allowReconnect bool)
}

// ConnectionInfo describes one connection of a group listing.
type ConnectionInfo struct {
	ConnectionID string
	UserID       string
}

// Options configures a Registry; the zero value is usable.
type Options struct {
	Logger *slog.Logger // nil = discard
	// Observer, when set, hears about every change of the index (a cluster node
	// mirrors them into the cluster's shared state).
	Observer Observer
	// Flusher, when set, gives a fan-out's flush goroutine the Flusher its
	// recipients are flushed through (one per goroutine and fan-out); nil = each
	// recipient's Queuer.Flush.
	Flusher func() Flusher
}

// Observer hears about the changes of a Registry's index, in order per hub. It is
// called with the hub's lock held: it must not block and must not call back into
// the registry. Hub names are the registry's keys (lower case).
type Observer interface {
	ConnectionAdded(hub, id, user string)
	ConnectionRemoved(hub, id, user string)
	// GroupJoined and GroupLeft report entering and leaving a group, not the
	// reasons for being in it.
	GroupJoined(hub, group, id, user string)
	GroupLeft(hub, group, id, user string)
}

// Registry is the node-local connection index: the connections, users and groups
// of every hub that this process holds. Persistent user-group records are not here
// (see UserGroups): callers apply them with Add's userGroups and JoinUser. It is
// safe for concurrent use.
type Registry struct {
	logger       *slog.Logger
	obs          Observer
	recipientBuf sync.Pool    // *[]Client reused by fan-out snapshots
	maxGroups    atomic.Int64 // groups a connection may join by id; 0 = unlimited
	flushing     flushing     // background flushes (see Background)
	newFlusher   func() Flusher

	mu   sync.RWMutex
	hubs map[string]*hubState
}

// joinKind records why a connection is in a group, so that the expiry of a user's
// membership removes only the memberships it created.
type joinKind uint8

const (
	joinDirect joinKind = 1 << iota // connection added explicitly, or by ttl=0
	joinUser                        // applied from a persistent user-group record
	joinAny    = joinDirect | joinUser
)

type conn struct {
	c      Client
	id     string
	user   string
	groups map[string]joinKind // nil until the connection joins a group
	// The connections of one user form a doubly linked list headed by
	// hubState.users[user]: most users hold one connection, and a map per user cost
	// about 250 bytes per idle connection (docs/performance.md, S4).
	prevOfUser, nextOfUser *conn
}

type hubState struct {
	name   string   // lower case
	obs    Observer // nil when nobody observes
	mu     sync.RWMutex
	conns  map[string]*conn
	users  map[string]*conn // the first connection of each user; see conn.nextOfUser
	groups map[string]map[string]*conn
}

func newHubState(name string, obs Observer) *hubState {
	return &hubState{
		name:   name,
		obs:    obs,
		conns:  make(map[string]*conn),
		users:  make(map[string]*conn),
		groups: make(map[string]map[string]*conn),
	}
}

// New returns an empty registry logging to logger (nil = discard).
func New(logger *slog.Logger) *Registry {
	return NewWithOptions(Options{Logger: logger})
}

// NewWithOptions returns an empty registry configured by opts.
func NewWithOptions(opts Options) *Registry {
	r := &Registry{logger: opts.Logger, obs: opts.Observer, newFlusher: opts.Flusher, hubs: make(map[string]*hubState)}
	if r.logger == nil {
		r.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.recipientBuf.New = func() any {
		s := make([]Client, 0, 64)
		return &s
	}
	return r
}

// hub returns the state of a hub, creating it when create is set; nil otherwise
// when the hub has never been used.
func (r *Registry) hub(name string, create bool) *hubState {
	key := strings.ToLower(name)
	r.mu.RLock()
	h := r.hubs[key]
	r.mu.RUnlock()
	if h != nil || !create {
		return h
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h = r.hubs[key]; h == nil {
		h = newHubState(key, r.obs)
		r.hubs[key] = h
	}
	return h
}

// Add registers c in its hub and joins it to userGroups, the groups its user is
// persistently in. A connection already registered with the same id is replaced.
func (r *Registry) Add(c Client, userGroups ...string) {
	h := r.hub(c.Hub(), true)
	h.mu.Lock()
	defer h.mu.Unlock()
	id := c.ID()
	if old := h.conns[id]; old != nil {
		h.removeLocked(old)
	}
	cn := &conn{c: c, id: id, user: c.UserID()}
	h.conns[id] = cn
	if h.obs != nil {
		h.obs.ConnectionAdded(h.name, id, cn.user)
	}
	if cn.user == "" {
		return
	}
	if first := h.users[cn.user]; first != nil {
		cn.nextOfUser, first.prevOfUser = first, cn
	}
	h.users[cn.user] = cn
	for _, group := range userGroups {
		h.joinLocked(cn, group, joinUser)
	}
}

// Remove unregisters c and drops its group memberships. It is a no-op when c is
// not registered (for example after CloseConnection already removed it).
func (r *Registry) Remove(c Client) {
	h := r.hub(c.Hub(), false)
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cn := h.conns[c.ID()]
	if cn == nil || !sameClient(cn.c, c) {
		return
	}
	h.removeLocked(cn)
}

// sameClient compares clients without panicking on non-comparable implementations.
func sameClient(a, b Client) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return false
	}
	if !ta.Comparable() {
		return true // cannot tell; ids already match
	}
	return a == b
}

// Connection returns the live connection with the given id.
func (r *Registry) Connection(hub, id string) (Client, bool) {
	h := r.hub(hub, false)
	if h == nil {
		return nil, false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	cn := h.conns[id]
	if cn == nil {
		return nil, false
	}
	return cn.c, true
}

// ConnectionCount returns the number of live connections in hub.
func (r *Registry) ConnectionCount(hub string) int {
	h := r.hub(hub, false)
	if h == nil {
		return 0
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

// UserExists reports whether user has at least one live connection in hub.
func (r *Registry) UserExists(hub, user string) bool {
	h := r.hub(hub, false)
	if h == nil {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.users[user] != nil
}

// GroupExists reports whether group has at least one connection in hub.
func (r *Registry) GroupExists(hub, group string) bool {
	h := r.hub(hub, false)
	if h == nil {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.groups[group]) > 0
}

// GroupConnections lists the connections of group, sorted by connection id.
func (r *Registry) GroupConnections(hub, group string) []ConnectionInfo {
	h := r.hub(hub, false)
	if h == nil {
		return nil
	}
	h.mu.RLock()
	members := h.groups[group]
	out := make([]ConnectionInfo, 0, len(members))
	for id, cn := range members {
		out = append(out, ConnectionInfo{ConnectionID: id, UserID: cn.user})
	}
	h.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectionID < out[j].ConnectionID })
	return out
}

func (h *hubState) removeLocked(cn *conn) {
	for group := range cn.groups {
		h.leaveLocked(cn, group, joinAny)
	}
	delete(h.conns, cn.id)
	if h.obs != nil {
		h.obs.ConnectionRemoved(h.name, cn.id, cn.user)
	}
	h.unlinkUser(cn)
}

// unlinkUser takes cn out of its user's list of connections.
func (h *hubState) unlinkUser(cn *conn) {
	switch {
	case cn.prevOfUser != nil:
		cn.prevOfUser.nextOfUser = cn.nextOfUser
	case h.users[cn.user] == cn:
		if cn.nextOfUser != nil {
			h.users[cn.user] = cn.nextOfUser
		} else {
			delete(h.users, cn.user)
		}
	}
	if cn.nextOfUser != nil {
		cn.nextOfUser.prevOfUser = cn.prevOfUser
	}
	cn.prevOfUser, cn.nextOfUser = nil, nil
}

// userConns yields the connections of user, id first. The loop body may remove the
// connection it was given (the next one is read before).
func (h *hubState) userConns(user string) iter.Seq2[string, *conn] {
	return func(yield func(string, *conn) bool) {
		for cn := h.users[user]; cn != nil; {
			next := cn.nextOfUser
			if !yield(cn.id, cn) {
				return
			}
			cn = next
		}
	}
}

func (h *hubState) joinLocked(cn *conn, group string, kind joinKind) {
	before := cn.groups[group]
	if cn.groups == nil {
		cn.groups = make(map[string]joinKind, 1)
	}
	cn.groups[group] = before | kind
	if before != 0 {
		return // already a member, for another reason
	}
	if h.obs != nil {
		h.obs.GroupJoined(h.name, group, cn.id, cn.user)
	}
	members := h.groups[group]
	if members == nil {
		members = make(map[string]*conn)
		h.groups[group] = members
	}
	members[cn.id] = cn
}

// leaveLocked clears the given reasons for cn being in group and removes it from
// the group when no reason is left.
func (h *hubState) leaveLocked(cn *conn, group string, kinds joinKind) {
	k, ok := cn.groups[group]
	if !ok {
		return
	}
	if k &^= kinds; k != 0 {
		cn.groups[group] = k
		return
	}
	delete(cn.groups, group)
	if h.obs != nil {
		h.obs.GroupLeft(h.name, group, cn.id, cn.user)
	}
	if members := h.groups[group]; members != nil {
		delete(members, cn.id)
		if len(members) == 0 {
			delete(h.groups, group)
		}
	}
}

// Each calls fn for every connection with the groups it is in, hub by hub under
// the hub's read lock: fn must not block or call back into the registry, and must
// copy groups if it keeps them.
func (r *Registry) Each(fn func(hub, id, user string, groups []string)) {
	r.mu.RLock()
	hubs := make([]*hubState, 0, len(r.hubs))
	for _, h := range r.hubs {
		hubs = append(hubs, h)
	}
	r.mu.RUnlock()
	var groups []string
	for _, h := range hubs {
		h.mu.RLock()
		for id, cn := range h.conns {
			groups = groups[:0]
			for g := range cn.groups {
				groups = append(groups, g)
			}
			fn(h.name, id, cn.user, groups)
		}
		h.mu.RUnlock()
	}
}
