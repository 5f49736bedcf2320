package hub

import (
	"iter"
	"maps"
)

// Closing removes connections from the registry before calling Close, so that
// nothing more is sent to them and a later Remove by the transport is a no-op.

// CloseConnection closes one connection with reason; false means there is no such connection.
func (r *Registry) CloseConnection(hub, id, reason string) bool {
	var closed *conn
	if !r.withConn(hub, id, func(h *hubState, cn *conn) { h.removeLocked(cn); closed = cn }) {
		return false
	}
	closed.c.Close(reason, false) // outside the lock: Close may call back into the registry
	return true
}

// CloseAll closes every connection of hub except the excluded connection ids.
func (r *Registry) CloseAll(hub string, excluded []string, reason string) {
	r.closeWhere(hub, excluded, reason, func(h *hubState) iter.Seq2[string, *conn] { return maps.All(h.conns) })
}

// CloseGroup closes every connection in group except the excluded connection ids.
func (r *Registry) CloseGroup(hub, group string, excluded []string, reason string) {
	r.closeWhere(hub, excluded, reason, func(h *hubState) iter.Seq2[string, *conn] { return maps.All(h.groups[group]) })
}

// CloseUser closes every connection of user except the excluded connection ids.
func (r *Registry) CloseUser(hub, user string, excluded []string, reason string) {
	r.closeWhere(hub, excluded, reason, func(h *hubState) iter.Seq2[string, *conn] { return h.userConns(user) })
}

// closeWhere removes the selected connections under the lock and closes them after
// releasing it, since Close may block on the transport.
func (r *Registry) closeWhere(hub string, excluded []string, reason string, selectConns func(*hubState) iter.Seq2[string, *conn]) {
	h := r.hub(hub, false)
	if h == nil {
		return
	}
	ex := newIDSet(excluded)
	buf := r.getBuf()
	h.mu.Lock()
	// Deleting the current entry while ranging is safe (maps in Go, and userConns
	// reads the next connection first); removeLocked deletes no other entry of the
	// selected set.
	for id, cn := range selectConns(h) {
		if !ex.has(id) {
			*buf = append(*buf, cn.c)
			h.removeLocked(cn)
		}
	}
	h.mu.Unlock()
	for _, c := range *buf {
		c.Close(reason, false)
	}
	r.putBuf(buf)
}
