package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
	"github.com/signalbox-io/signalbox/protocol"
)

func payload(target string) *hub.Payload {
	return hub.NewPayload(&protocol.Invocation{Target: target})
}

func dur(d time.Duration) *time.Duration { return &d }

// testNode calls a Node the way the registry used to be called, failing the test
// on any error, so that the single-node tests read as before the split.
type testNode struct {
	t *testing.T
	n *Node
}

func newTestNode(t *testing.T, clock *hubtest.Clock, maxNoTTL int) *testNode {
	t.Helper()
	opts := hub.UserGroupOptions{MaxNoTTL: maxNoTTL}
	if clock != nil {
		opts.Now = clock.Now
	}
	n, err := NewNode(context.Background(), Options{UserGroups: hub.NewUserGroups(opts)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return &testNode{t: t, n: n}
}

func newClocked(t *testing.T) (*testNode, *hubtest.Clock, *hubtest.Proto) {
	clk := hubtest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return newTestNode(t, clk, 0), clk, hubtest.NewProto("json")
}

func (r *testNode) must(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *testNode) b(v bool, err error) bool {
	r.t.Helper()
	r.must(err)
	return v
}

func (r *testNode) list(v []hub.ConnectionInfo, err error) []hub.ConnectionInfo {
	r.t.Helper()
	r.must(err)
	return v
}

var bg = context.Background()

func (r *testNode) Add(c hub.Client)    { r.must(r.n.Add(bg, c)) }
func (r *testNode) Remove(c hub.Client) { r.n.Remove(c) }
func (r *testNode) AddUserToGroup(h, u, g string, ttl *time.Duration) {
	r.must(r.n.AddUserToGroup(bg, h, u, g, ttl))
}
func (r *testNode) RemoveUserFromGroup(h, u, g string) { r.must(r.n.RemoveUserFromGroup(bg, h, u, g)) }
func (r *testNode) RemoveUserFromAllGroups(h, u string) {
	r.must(r.n.RemoveUserFromAllGroups(bg, h, u))
}
func (r *testNode) RemoveFromAllGroups(h, c string) { r.must(r.n.RemoveFromAllGroups(bg, h, c)) }
func (r *testNode) AddToGroup(h, g, c string) bool  { return r.b(r.n.AddToGroup(bg, h, g, c)) }
func (r *testNode) UserInGroup(h, u, g string) bool { return r.b(r.n.UserInGroup(bg, h, u, g)) }
func (r *testNode) UserExists(h, u string) bool     { return r.b(r.n.UserExists(bg, h, u)) }
func (r *testNode) GroupExists(h, g string) bool    { return r.b(r.n.GroupExists(bg, h, g)) }
func (r *testNode) GroupConnections(h, g string) []hub.ConnectionInfo {
	return r.list(r.n.GroupConnections(bg, h, g))
}
func (r *testNode) SendGroup(h, g string, p *hub.Payload, ex []string) {
	r.must(r.n.SendGroup(bg, h, g, p, ex))
}
func (r *testNode) CloseGroup(h, g string, ex []string, reason string) {
	r.must(r.n.CloseGroup(bg, h, g, ex, reason))
}
func (r *testNode) Connection(h, c string) (hub.Client, bool) { return r.n.Registry().Connection(h, c) }
