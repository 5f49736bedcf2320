package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
	"github.com/signalbox-io/signalbox/protocol"
)

// redisURL is the Redis the cluster tests use: SIGNALBOX_TEST_REDIS or the local
// default. Without it the tests skip, except under CI where they fail.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("SIGNALBOX_TEST_REDIS")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	co, err := rueidis.ParseURL(u)
	if err == nil {
		var c rueidis.Client
		if c, err = rueidis.NewClient(co); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = c.Do(ctx, c.B().Ping().Build()).Error()
			cancel()
			c.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v", u, err)
		}
		t.Skipf("no redis at %s: %v", u, err)
	}
	return u
}

// testPrefix is unique per test, so that tests running at once never share keys.
func testPrefix(t *testing.T) string {
	return fmt.Sprintf("sbtest:%s:%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
}

type clusterNode struct {
	*Node
	b *RedisBroker
}

func startRedisNode(t *testing.T, url, prefix, id string, deadAfter time.Duration) *clusterNode {
	t.Helper()
	b, err := NewRedisBroker(RedisOptions{URL: url, Prefix: prefix, NodeID: id, DeadAfter: deadAfter})
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNode(context.Background(), Options{Broker: b, NodeID: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return &clusterNode{Node: n, b: b}
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startCluster starts n nodes and waits until each is ready and sees all.
func startCluster(t *testing.T, count int, deadAfter time.Duration) []*clusterNode {
	t.Helper()
	url, prefix := redisURL(t), testPrefix(t)
	nodes := make([]*clusterNode, count)
	for i := range nodes {
		nodes[i] = startRedisNode(t, url, prefix, fmt.Sprintf("n%d", i), deadAfter)
	}
	waitUntil(t, 10*time.Second, "nodes ready", func() bool {
		for _, n := range nodes {
			if n.Ready() != nil || n.b.freshNodes() != count {
				return false
			}
		}
		return true
	})
	return nodes
}

// inbox is a connection that reports what it receives on a channel.
type inbox struct {
	*hubtest.Client
	ch chan string
}

func newInbox(hubName, id, user string) *inbox {
	return &inbox{Client: hubtest.NewClient(hubName, id, user, protocol.JSON()), ch: make(chan string, 64)}
}

func (c *inbox) Send(frame []byte) bool {
	c.Client.Send(frame)
	c.ch <- string(frame)
	return true
}

func (c *inbox) Close(reason string, allow bool) {
	c.Client.Close(reason, allow)
	c.ch <- "closed"
}

func (c *inbox) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-c.ch:
		if !strings.Contains(got, want) {
			t.Fatalf("%s got %q, want %q", c.ID(), got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not get %q", c.ID(), want)
	}
}

// quiet asserts that nothing more arrives; the marker message sent to every
// connection after the tested sends proves the earlier ones were processed.
func (c *inbox) nothingBefore(t *testing.T, marker string) {
	t.Helper()
	select {
	case got := <-c.ch:
		if !strings.Contains(got, marker) {
			t.Fatalf("%s got %q, want nothing before %q", c.ID(), got, marker)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not get marker %q", c.ID(), marker)
	}
}

func jsonPayload(target string) *hub.Payload {
	return hub.NewPayload(&protocol.Invocation{Target: target, Arguments: []protocol.Value{}})
}

func TestRedisClusterRouting(t *testing.T) {
	nodes := startCluster(t, 3, 5*time.Second)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	t.Logf("redis %s: %d broadcast channel(s)", a.b.cmd.Mode(), a.b.shards)
	alice, bob, carol := newInbox("chat", "ca", "alice"), newInbox("chat", "cb", "bob"), newInbox("chat", "cc", "carol")
	for _, x := range []struct {
		n *clusterNode
		c *inbox
	}{{a, alice}, {b, bob}, {c, carol}} {
		if err := x.n.Add(ctx, x.c); err != nil {
			t.Fatal(err)
		}
	}
	all := []*inbox{alice, bob, carol}
	marker := func(name string) {
		t.Helper()
		if err := a.SendAll(ctx, "chat", jsonPayload(name), nil); err != nil {
			t.Fatal(err)
		}
	}

	// Broadcast from A reaches every node's connection once.
	marker("hello")
	for _, x := range all {
		x.expect(t, "hello")
	}
	// User and connection sends from A reach only their target.
	if err := a.SendUser(ctx, "chat", "carol", jsonPayload("toCarol")); err != nil {
		t.Fatal(err)
	}
	if err := a.SendConnection(ctx, "chat", "cb", jsonPayload("toBob")); err != nil {
		t.Fatal(err)
	}
	carol.expect(t, "toCarol")
	bob.expect(t, "toBob")
	marker("m1")
	alice.nothingBefore(t, "m1")
	bob.nothingBefore(t, "m1")
	carol.nothingBefore(t, "m1")

	// Existence answers the same everywhere.
	for _, n := range nodes {
		for _, q := range []struct {
			what string
			f    func() (bool, error)
			want bool
		}{
			{"conn cc", func() (bool, error) { return n.ConnectionExists(ctx, "chat", "cc") }, true},
			{"conn nope", func() (bool, error) { return n.ConnectionExists(ctx, "chat", "nope") }, false},
			{"user bob", func() (bool, error) { return n.UserExists(ctx, "chat", "bob") }, true},
			{"user dave", func() (bool, error) { return n.UserExists(ctx, "chat", "dave") }, false},
		} {
			if got, err := q.f(); err != nil || got != q.want {
				t.Fatalf("node %s %s = %v, %v; want %v", n.ID(), q.what, got, err, q.want)
			}
		}
	}

	// Group add by connection id from A, acknowledged by C; the group is visible
	// from B; a group send from B reaches C's connection only.
	if ok, err := a.AddToGroup(ctx, "chat", "room", "cc"); err != nil || !ok {
		t.Fatalf("AddToGroup = %v, %v", ok, err)
	}
	if ok, err := a.AddToGroup(ctx, "chat", "room", "nope"); err != nil || ok {
		t.Fatalf("AddToGroup(absent) = %v, %v", ok, err)
	}
	if ok, err := b.GroupExists(ctx, "chat", "room"); err != nil || !ok {
		t.Fatalf("GroupExists on B = %v, %v", ok, err)
	}
	if err := b.SendGroup(ctx, "chat", "room", jsonPayload("toRoom"), nil); err != nil {
		t.Fatal(err)
	}
	carol.expect(t, "toRoom")
	marker("m2")
	alice.nothingBefore(t, "m2")
	bob.nothingBefore(t, "m2")
	carol.nothingBefore(t, "m2")

	// A persistent user membership added on A applies to bob's connection on B and
	// to his later connection on C.
	if err := a.AddUserToGroup(ctx, "chat", "bob", "vip", nil); err != nil {
		t.Fatal(err)
	}
	bob2 := newInbox("chat", "cb2", "bob")
	if err := c.Add(ctx, bob2); err != nil {
		t.Fatal(err)
	}
	if err := a.SendGroup(ctx, "chat", "vip", jsonPayload("toVip"), nil); err != nil {
		t.Fatal(err)
	}
	bob.expect(t, "toVip")
	bob2.expect(t, "toVip")
	// B joins cb to vip when the membership's message reaches it, delivers the send
	// that followed, and writes cb's group record to Redis from its state writer: the
	// listing may lag the delivery a little (the test read it too early under load).
	var members []hub.ConnectionInfo
	var err error
	want := []hub.ConnectionInfo{{ConnectionID: "cb", UserID: "bob"}, {ConnectionID: "cb2", UserID: "bob"}}
	deadline := time.Now().Add(5 * time.Second)
	for members, err = c.GroupConnections(ctx, "chat", "vip"); err != nil || !slices.Equal(members, want); members, err = c.GroupConnections(ctx, "chat", "vip") {
		if time.Now().After(deadline) {
			t.Fatalf("vip members = %v, %v; want %v", members, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, err := c.UserInGroup(ctx, "chat", "bob", "vip"); err != nil || !ok {
		t.Fatalf("UserInGroup = %v, %v", ok, err)
	}
	if err := b.RemoveUserFromGroup(ctx, "chat", "bob", "vip"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "vip empty", func() bool { ok, _ := a.GroupExists(ctx, "chat", "vip"); return !ok })

	// Close from A closes the connection on C, and it is gone everywhere.
	if ok, err := a.CloseConnection(ctx, "chat", "cc", "bye"); err != nil || !ok {
		t.Fatalf("CloseConnection = %v, %v", ok, err)
	}
	carol.expect(t, "closed")
	if ok, err := b.ConnectionExists(ctx, "chat", "cc"); err != nil || ok {
		t.Fatalf("closed connection exists = %v, %v", ok, err)
	}
}

// A node that dies without a word is forgotten within DeadAfter.
func TestRedisDeadNodeForgotten(t *testing.T) {
	const deadAfter = 2 * time.Second
	nodes := startCluster(t, 2, deadAfter)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	if err := b.Add(ctx, newInbox("chat", "cb", "bob")); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.AddToGroup(ctx, "chat", "g", "cb"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, _ := a.GroupExists(ctx, "chat", "g"); !ok {
		t.Fatal("group not visible")
	}
	// Kill: stop heartbeats and subscriptions, leave the records behind.
	b.b.stop()
	b.b.done.Wait()
	start := time.Now()
	waitUntil(t, deadAfter+3*time.Second, "dead node forgotten", func() bool {
		c, _ := a.ConnectionExists(ctx, "chat", "cb")
		u, _ := a.UserExists(ctx, "chat", "bob")
		g, _ := a.GroupExists(ctx, "chat", "g")
		return !c && !u && !g
	})
	t.Logf("forgotten after %v (bound %v)", time.Since(start).Round(time.Millisecond), deadAfter)
}

func TestKeysCannotCollide(t *testing.T) {
	k := keys{"p"}
	seen := map[string]string{}
	for _, parts := range [][2]string{{"a:", "b"}, {"a", ":b"}, {"a:1:b", ""}, {"", "a:1:b"}, {"ab", ""}, {"a", "b"}} {
		key := k.group(parts[0], parts[1])
		if prev, ok := seen[key]; ok {
			t.Fatalf("%q and %q share key %q", prev, parts, key)
		}
		seen[key] = fmt.Sprint(parts)
		if !strings.HasPrefix(key, "p:") {
			t.Fatalf("key %q lacks the prefix", key)
		}
	}
}

// A node that joined after the others' last heartbeat is known at once: its
// connections exist for them before they next refresh their view of the nodes.
func TestRedisNewNodeVisibleAtOnce(t *testing.T) {
	nodes := startCluster(t, 1, time.Minute) // a long heartbeat: the view stays stale
	a := nodes[0]
	late := startRedisNode(t, redisURL(t), a.b.k.prefix, "late", time.Minute)
	waitUntil(t, 10*time.Second, "late node ready", func() bool { return late.Ready() == nil })
	ctx := context.Background()
	if err := late.Add(ctx, newInbox("chat", "cl", "lou")); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.ConnectionExists(ctx, "chat", "cl"); err != nil || !ok {
		t.Fatalf("ConnectionExists on the old node = %v, %v", ok, err)
	}
	if ok, err := a.UserExists(ctx, "chat", "lou"); err != nil || !ok {
		t.Fatalf("UserExists on the old node = %v, %v", ok, err)
	}
	// Its address too, for forwarding, even when learnt after its first heartbeat.
	late.SetAddress("http://late.example:1")
	waitUntil(t, 5*time.Second, "address registered", func() bool {
		v, _ := late.b.cmd.Do(ctx, late.b.cmd.B().Hget().Key(late.b.k.addrs()).Field(late.b.instance()).Build()).ToString()
		return v == "http://late.example:1"
	})
	if addr, ok := a.NodeAddress(ctx, "late"); !ok || addr != "http://late.example:1" {
		t.Fatalf("NodeAddress = %q, %v", addr, ok)
	}
}

// When Redis loses the cluster's records (a restart without persistence, or the
// others took a node for dead and deleted them), every node registers what it
// holds again by itself.
func TestRedisReRegistersAfterDataLoss(t *testing.T) {
	nodes := startCluster(t, 2, 5*time.Second)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	if err := b.Add(ctx, newInbox("chat", "cb", "bob")); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.AddToGroup(ctx, "chat", "g", "cb"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// Delete every key of the cluster, as an empty Redis would be. The keys are listed
	// first and deleted in one round trip; b's heartbeat may notice the loss (and
	// register again) at any moment from then on, so what is checked afterwards is
	// that the records come back under a new epoch, not that they stay gone for a while.
	old := b.b.instance()
	var keys []string
	var cursor uint64
	for {
		e, err := a.b.cmd.Do(ctx, a.b.cmd.B().Scan().Cursor(cursor).Match(a.b.k.prefix+":*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, e.Elements...)
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	ck := a.b.k.conn("chat", "cb")
	dels := make(rueidis.Commands, 0, len(keys))
	at := -1
	for i, k := range keys {
		if k == ck {
			at = i
		}
		dels = append(dels, a.b.cmd.B().Del().Key(k).Build())
	}
	if at < 0 {
		t.Fatalf("the connection's record %q is not among the cluster's keys %q", ck, keys)
	}
	for i, r := range a.b.cmd.DoMulti(ctx, dels...) {
		n, err := r.AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if i == at && n != 1 {
			t.Fatalf("the connection's record was not deleted (DEL answered %d)", n)
		}
	}
	// The resync is counted after its records are written: wait for both.
	waitUntil(t, 5*time.Second, "records registered again", func() bool {
		c, _ := a.ConnectionExists(ctx, "chat", "cb")
		u, _ := a.UserExists(ctx, "chat", "bob")
		g, _ := a.GroupExists(ctx, "chat", "g")
		return c && u && g && b.b.Stats().Resyncs > 0
	})
	if b.b.instance() == old {
		t.Fatalf("the records are back under the old epoch %q", old)
	}
}

// TestRedisGroupLimit: the node holding a connection refuses to add it to a group
// beyond its limit, and the refusal reaches the node that was asked (a
// *hub.GroupLimitError, not "no such connection" nor a timeout); the user limit holds
// in the shared store whichever node is asked.
func TestRedisGroupLimit(t *testing.T) {
	nodes := startCluster(t, 2, 5*time.Second)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	for _, n := range nodes {
		n.SetMaxGroups(2)
	}
	bob := newInbox("chat", "cb", "bob")
	if err := b.Add(ctx, bob); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"g1", "g2", "g2"} {
		if ok, err := a.AddToGroup(ctx, "chat", g, "cb"); !ok || err != nil {
			t.Fatalf("add to %s from the other node: %v %v", g, ok, err)
		}
	}
	var gl *hub.GroupLimitError
	for _, n := range nodes {
		ok, err := n.AddToGroup(ctx, "chat", "g3", "cb")
		if !errors.As(err, &gl) || gl.Limit != 2 || gl.User || !ok {
			t.Fatalf("node %s: third group: %v %v, want a GroupLimitError of 2", n.ID(), ok, err)
		}
	}
	if ok, err := a.GroupExists(ctx, "chat", "g3"); ok || err != nil {
		t.Fatalf("the refused add took effect: %v %v", ok, err)
	}
	if ok, err := a.AddToGroup(ctx, "chat", "g1", "nobody"); ok || err != nil {
		t.Fatalf("unknown connection: %v %v", ok, err)
	}

	// The user's memberships, counted in Redis.
	if err := a.AddUserToGroup(ctx, "chat", "bob", "u1", dur(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddUserToGroup(ctx, "chat", "bob", "u2", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.AddUserToGroup(ctx, "chat", "bob", "u2", dur(time.Hour)); err != nil {
		t.Fatalf("refreshing a membership: %v", err)
	}
	for _, n := range nodes {
		err := n.AddUserToGroup(ctx, "chat", "bob", "u3", nil)
		if !errors.As(err, &gl) || !gl.User || gl.Limit != 2 {
			t.Fatalf("node %s: third membership: %v, want a user GroupLimitError", n.ID(), err)
		}
	}
	if ok, err := a.shared.HasUserGroup(ctx, "chat", "bob", "u3"); ok || err != nil {
		t.Fatalf("the refused membership was recorded: %v %v", ok, err)
	}
	if err := a.AddUserToGroup(ctx, "chat", "carol", "u3", nil); err != nil {
		t.Fatalf("another user: %v", err)
	}
}
