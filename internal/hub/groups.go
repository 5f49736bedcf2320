package hub

import "fmt"

// GroupLimitError refuses to add a connection (or a user) to one group more than the
// limit set by SetMaxGroups allows; nothing was added. Find it with errors.As.
type GroupLimitError struct {
	Limit int
	// User is set when the user's persistent memberships are at the limit; otherwise
	// the connection's groups are.
	User bool
}

func (e *GroupLimitError) Error() string {
	if e.User {
		return fmt.Sprintf("the user is already in %d groups, the limit per user", e.Limit)
	}
	return fmt.Sprintf("the connection is already in %d groups, the limit per connection", e.Limit)
}

// SetMaxGroups sets how many groups one connection may be in when it is added by
// connection id (AddToGroup, JoinUserNow); 0 means unlimited. Every group counts,
// however the connection joined it; the groups of its user's persistent memberships
// join regardless (they are bounded where they are recorded), so a connection is
// in at most twice n groups. It may be changed at any time.
func (r *Registry) SetMaxGroups(n int) { r.maxGroups.Store(int64(max(n, 0))) }

// full returns the limit cn is at when it may not join group by connection id, else
// 0; h.mu is held.
func (r *Registry) full(cn *conn, group string) int {
	limit := int(r.maxGroups.Load())
	if limit == 0 || len(cn.groups) < limit {
		return 0
	}
	if _, in := cn.groups[group]; in {
		return 0 // joining a group it is in already adds nothing
	}
	return limit
}

// AddToGroup adds connection connID to group; false means there is no such
// connection. A connection already in the SetMaxGroups limit of groups is not added:
// the error is a *GroupLimitError.
func (r *Registry) AddToGroup(hub, group, connID string) (bool, error) {
	var err error
	ok := r.withConn(hub, connID, func(h *hubState, cn *conn) {
		if limit := r.full(cn, group); limit > 0 {
			err = &GroupLimitError{Limit: limit}
			return
		}
		h.joinLocked(cn, group, joinDirect)
	})
	return ok, err
}

// RemoveFromGroup removes connection connID from group; false means there is no such
// connection (removing a connection that is not in the group succeeds).
func (r *Registry) RemoveFromGroup(hub, group, connID string) bool {
	return r.withConn(hub, connID, func(h *hubState, cn *conn) { h.leaveLocked(cn, group, joinAny) })
}

// RemoveFromAllGroups removes connection connID from every group it is in.
func (r *Registry) RemoveFromAllGroups(hub, connID string) {
	r.withConn(hub, connID, func(h *hubState, cn *conn) {
		for group := range cn.groups {
			h.leaveLocked(cn, group, joinAny)
		}
	})
}

// withConn runs fn on connection id of hub under the hub's write lock; false means
// there is no such connection.
func (r *Registry) withConn(hub, id string, fn func(h *hubState, cn *conn)) bool {
	h := r.hub(hub, false)
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cn := h.conns[id]
	if cn == nil {
		return false
	}
	fn(h, cn)
	return true
}

// JoinUser puts the user's current connections in group because of a persistent
// membership: LeaveUser takes them out again unless they also joined directly.
func (r *Registry) JoinUser(hub, user, group string) {
	r.withUser(hub, user, func(h *hubState, cn *conn) { h.joinLocked(cn, group, joinUser) })
}

// JoinUserNow puts the user's current connections in group as if each had been
// added by connection id (the ttl=0 form of adding a user: nothing is remembered).
// A connection at the SetMaxGroups limit is left out; skipped counts them.
func (r *Registry) JoinUserNow(hub, user, group string) (skipped int) {
	r.withUser(hub, user, func(h *hubState, cn *conn) {
		if r.full(cn, group) > 0 {
			skipped++
			return
		}
		h.joinLocked(cn, group, joinDirect)
	})
	return skipped
}

// LeaveUser undoes JoinUser: the user's connections leave group unless they
// joined it directly. It is what expiry of a persistent membership does.
func (r *Registry) LeaveUser(hub, user, group string) {
	r.withUser(hub, user, func(h *hubState, cn *conn) { h.leaveLocked(cn, group, joinUser) })
}

// RemoveUserFromGroup removes all the user's current connections from group,
// however they joined.
func (r *Registry) RemoveUserFromGroup(hub, user, group string) {
	r.withUser(hub, user, func(h *hubState, cn *conn) { h.leaveLocked(cn, group, joinAny) })
}

// RemoveUserFromAllGroups removes the user's current connections from all groups.
func (r *Registry) RemoveUserFromAllGroups(hub, user string) {
	r.withUser(hub, user, func(h *hubState, cn *conn) {
		for group := range cn.groups {
			h.leaveLocked(cn, group, joinAny)
		}
	})
}

// withUser runs fn on each connection of user under the hub's write lock.
func (r *Registry) withUser(hub, user string, fn func(h *hubState, cn *conn)) {
	h := r.hub(hub, false)
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, cn := range h.userConns(user) {
		fn(h, cn)
	}
}

// UserInGroup reports whether any of the user's connections is in group.
// Persistent memberships of an offline user are not the registry's to know.
func (r *Registry) UserInGroup(hub, user, group string) bool {
	h := r.hub(hub, false)
	if h == nil {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, cn := range h.userConns(user) {
		if _, ok := cn.groups[group]; ok {
			return true
		}
	}
	return false
}
