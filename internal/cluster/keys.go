package cluster

import (
	"strconv"
	"strings"
)

// keys builds every Redis key and channel name of one cluster. Each variable part
// is length-prefixed ("<len>:<bytes>"), so no user, group, hub or connection name
// can end one part early or look like another key: "a:" + "b" and "a" + ":b" are
// different keys. Every name starts with the configured prefix.
type keys struct{ prefix string }

func lp(b *strings.Builder, parts ...string) string {
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

func (k keys) build(kind string, parts ...string) string {
	var b strings.Builder
	b.Grow(len(k.prefix) + len(kind) + 2 + 8*len(parts))
	b.WriteString(k.prefix)
	b.WriteByte(':')
	b.WriteString(kind)
	b.WriteByte(':')
	return lp(&b, parts...)
}

// conn is a string: the instance holding the connection, "\n", its user.
func (k keys) conn(hub, id string) string { return k.build("c", hub, id) }

// user is a hash: connection id -> instance.
func (k keys) user(hub, user string) string { return k.build("u", hub, user) }

// group is a hash: connection id -> instance "\n" user.
func (k keys) group(hub, group string) string { return k.build("g", hub, group) }

// userGroups is a hash: group -> "<expires ms> <no-ttl 0|1> <updated ns>".
func (k keys) userGroups(hub, user string) string { return k.build("ug", hub, user) }

// refs is a set of the records an instance wrote, so that a survivor can delete
// them once the instance is dead.
func (k keys) refs(inst string) string { return k.build("r", inst) }

// nodes is a sorted set: instance -> last heartbeat (unix ms).
func (k keys) nodes() string { return k.prefix + ":nodes" }

// addrs is a hash: instance -> advertised internal address.
func (k keys) addrs() string { return k.prefix + ":addrs" }

// broadcast is the channel every node subscribes to; shard i of n when n > 1.
func (k keys) broadcast(i, n int) string {
	if n <= 1 {
		return k.prefix + ":b"
	}
	return k.prefix + ":b:{" + strconv.Itoa(i) + "}"
}

// node is the channel of one node's targeted messages.
func (k keys) node(id string) string { return k.build("n", id) }
