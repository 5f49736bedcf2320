package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// LiveNodes returns the nodes that heartbeat within DeadAfter, each with the address
// it forwards requests on ("" when it has not told one yet).
func (b *RedisBroker) LiveNodes(ctx context.Context) (map[string]string, error) {
	if err := b.Ready(); err != nil {
		return nil, err
	}
	scores, addrs, err := b.nodesAndAddrs(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: live nodes: %w", b.failed(err))
	}
	cut := time.Now().Add(-b.opts.DeadAfter).UnixMilli()
	out := make(map[string]string)
	best := make(map[string]int64)
	for _, z := range scores {
		at := int64(z.Score)
		if at < cut {
			continue
		}
		node := nodeOf(z.Member)
		if prev, seen := best[node]; !seen || at > prev {
			best[node], out[node] = at, addrs[z.Member]
		}
	}
	return out, nil
}

// liveNodeLister is the part of a shared state that can list the live nodes.
type liveNodeLister interface {
	LiveNodes(ctx context.Context) (map[string]string, error)
}

// LiveNodes returns the live nodes of the cluster and their forwarding addresses; on
// a single node, just this one (with no address).
func (n *Node) LiveNodes(ctx context.Context) (map[string]string, error) {
	l, ok := n.shared.(liveNodeLister)
	if !ok {
		return map[string]string{n.id: ""}, nil
	}
	return l.LiveNodes(ctx)
}

// nodesAndAddrs reads the node heartbeat scores (member: instance, score: unix ms) and
// the advertised addresses (by instance) in one round trip.
func (b *RedisBroker) nodesAndAddrs(ctx context.Context) ([]rueidis.ZScore, map[string]string, error) {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	c := b.cmd
	res := c.DoMulti(ctx,
		c.B().Zrange().Key(b.k.nodes()).Min("-inf").Max("+inf").Byscore().Withscores().Build(),
		c.B().Hgetall().Key(b.k.addrs()).Build())
	scores, err := res[0].AsZScores()
	if err != nil {
		return nil, nil, err
	}
	addrs, err := res[1].AsStrMap()
	if err != nil {
		return nil, nil, err
	}
	return scores, addrs, nil
}
