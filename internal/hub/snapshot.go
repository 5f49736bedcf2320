package hub

import "sort"

// ConnectionState is one connection with its groups, as of the moment it was read.
type ConnectionState struct {
	ConnectionID string
	UserID       string
	Groups       map[string]bool
}

// Connections returns every connection of hub with its groups, sorted by id. The
// groups are a copy: later joins and leaves do not show in it.
func (r *Registry) Connections(hub string) []ConnectionState {
	h := r.hub(hub, false)
	if h == nil {
		return nil
	}
	h.mu.RLock()
	out := make([]ConnectionState, 0, len(h.conns))
	for id, cn := range h.conns {
		gs := make(map[string]bool, len(cn.groups))
		for g := range cn.groups {
			gs[g] = true
		}
		out = append(out, ConnectionState{ConnectionID: id, UserID: cn.user, Groups: gs})
	}
	h.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectionID < out[j].ConnectionID })
	return out
}
