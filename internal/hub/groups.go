package hub

import (
	"math"
	"time"
)

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

// AddUserToGroup adds user to group. With ttl nil the membership is persistent:
// it applies to the user's current and future connections for a year, and a user
// keeps only the most recently updated such memberships (100 by default). With
// ttl > 0 it is persistent until now+ttl. With ttl <= 0 only the user's current
// connections join and nothing is remembered.
func (r *Registry) AddUserToGroup(hub, user, group string, ttl *time.Duration) {
	h := r.hub(hub, true)
	now := r.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	r.sweepLocked(h, now)
	if ttl != nil && *ttl <= 0 {
		for _, cn := range h.users[user] {
			h.joinLocked(cn, group, joinDirect)
		}
		return
	}
	records := h.userGroups[user]
	if records == nil {
		records = make(map[string]*userGroup)
		h.userGroups[user] = records
	}
	rec := records[group]
	if rec == nil {
		rec = &userGroup{}
		records[group] = rec
		h.records++
	}
	h.seq++
	rec.updated = h.seq
	rec.noTTL = ttl == nil
	if rec.noTTL {
		rec.expires = now.Add(r.lifetime)
	} else {
		rec.expires = now.Add(*ttl)
	}
	h.scheduleLocked(user, group, rec)
	for _, cn := range h.users[user] {
		h.joinLocked(cn, group, joinUser)
	}
	if rec.noTTL {
		r.capNoTTLLocked(h, user)
	}
}

// capNoTTLLocked drops the least recently updated no-ttl memberships of user
// beyond the configured maximum.
func (r *Registry) capNoTTLLocked(h *hubState, user string) {
	records := h.userGroups[user]
	count := 0
	for _, rec := range records {
		if rec.noTTL {
			count++
		}
	}
	for ; count > r.maxNoTTL; count-- {
		oldest, oldestSeq := "", uint64(math.MaxUint64)
		for group, rec := range records {
			if rec.noTTL && rec.updated < oldestSeq {
				oldest, oldestSeq = group, rec.updated
			}
		}
		h.dropRecordLocked(user, oldest)
	}
}

// dropRecordLocked forgets a persistent membership and takes the user's
// connections out of the group unless they joined it directly.
func (h *hubState) dropRecordLocked(user, group string) {
	h.deleteRecordLocked(user, group)
	for _, cn := range h.users[user] {
		h.leaveLocked(cn, group, joinUser)
	}
}

// deleteRecordLocked forgets one persistent record; its expiry entry goes stale.
func (h *hubState) deleteRecordLocked(user, group string) {
	records := h.userGroups[user]
	if _, ok := records[group]; !ok {
		return
	}
	delete(records, group)
	h.records--
	if len(records) == 0 {
		delete(h.userGroups, user)
	}
}

// RemoveUserFromGroup forgets the user's persistent membership of group and
// removes all the user's current connections from it.
func (r *Registry) RemoveUserFromGroup(hub, user, group string) {
	h := r.hub(hub, false)
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deleteRecordLocked(user, group)
	for _, cn := range h.users[user] {
		h.leaveLocked(cn, group, joinAny)
	}
}

// RemoveUserFromAllGroups forgets every persistent membership of user and removes
// the user's current connections from all groups.
func (r *Registry) RemoveUserFromAllGroups(hub, user string) {
	h := r.hub(hub, false)
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records -= len(h.userGroups[user])
	delete(h.userGroups, user)
	for _, cn := range h.users[user] {
		for group := range cn.groups {
			h.leaveLocked(cn, group, joinAny)
		}
	}
}

// UserInGroup reports whether user has a live persistent membership of group or
// any of its connections is in the group.
func (r *Registry) UserInGroup(hub, user, group string) bool {
	h := r.hub(hub, false)
	if h == nil {
		return false
	}
	now := r.now()
	r.sweepIfDue(h)
	h.mu.RLock()
	defer h.mu.RUnlock()
	if rec := h.userGroups[user][group]; rec != nil && now.Before(rec.expires) {
		return true
	}
	for _, cn := range h.users[user] {
		if _, ok := cn.groups[group]; ok {
			return true
		}
	}
	return false
}
