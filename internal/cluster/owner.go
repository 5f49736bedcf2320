package cluster

import "context"

// ConnectionOwner names the node that holds a connection: this node's id when the
// connection is local, another node's when the cluster knows it there, ok false when
// it exists nowhere. Operations that need the connection's own transport (client
// results, streams) are carried out on that node.
func (n *Node) ConnectionOwner(ctx context.Context, hubName, connID string) (node string, ok bool, err error) {
	if _, local := n.reg.Connection(hubName, connID); local {
		return n.id, true, nil
	}
	if n.shared == nil {
		return "", false, nil
	}
	return n.owner(ctx, hubName, connID)
}
