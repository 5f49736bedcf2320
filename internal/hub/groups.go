package hub

// AddToGroup adds connection connID to group; false means there is no such connection.
func (r *Registry) AddToGroup(hub, group, connID string) bool {
	return r.withConn(hub, connID, func(h *hubState, cn *conn) { h.joinLocked(cn, group, joinDirect) })
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
func (r *Registry) JoinUserNow(hub, user, group string) {
	r.withUser(hub, user, func(h *hubState, cn *conn) { h.joinLocked(cn, group, joinDirect) })
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
