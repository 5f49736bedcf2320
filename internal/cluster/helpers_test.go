package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/protocol"
)

// fakeProto frames an invocation as "<name>:<target>".
type fakeProto struct{ name string }

func (p *fakeProto) Name() string { return p.name }
func (p *fakeProto) Version() int { return 2 }
func (p *fakeProto) Binary() bool { return p.name != "json" }
func (p *fakeProto) AppendFrame(dst []byte, m protocol.Message) ([]byte, error) {
	inv, ok := m.(*protocol.Invocation)
	if !ok {
		return nil, errors.New("not an invocation")
	}
	return append(dst, p.name+":"+inv.Target...), nil
}
func (p *fakeProto) AppendUnframed(dst []byte, m protocol.Message) ([]byte, error) {
	return p.AppendFrame(dst, m)
}
func (p *fakeProto) ParseUnframed([]byte) (protocol.Message, error) { return nil, errors.New("no") }

// fakeClient records what it is sent and whether it was closed.
type fakeClient struct {
	id, hub, user string
	proto         protocol.Protocol

	mu     sync.Mutex
	frames []string
	closed bool
}

func newFake(hubName, id, user string, p protocol.Protocol) *fakeClient {
	return &fakeClient{id: id, hub: hubName, user: user, proto: p}
}

func (c *fakeClient) ID() string                  { return c.id }
func (c *fakeClient) Hub() string                 { return c.hub }
func (c *fakeClient) UserID() string              { return c.user }
func (c *fakeClient) Protocol() protocol.Protocol { return c.proto }
func (c *fakeClient) Send(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, string(frame))
	return true
}
func (c *fakeClient) Close(string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
}

func (c *fakeClient) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.frames...)
}

func (c *fakeClient) isClosed() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, ""
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

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

func newTestNode(t *testing.T, clock *fakeClock, maxNoTTL int) *testNode {
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

func newClocked(t *testing.T) (*testNode, *fakeClock, *fakeProto) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return newTestNode(t, clk, 0), clk, &fakeProto{name: "json"}
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
