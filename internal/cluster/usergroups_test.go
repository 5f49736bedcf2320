package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
)

// These tests drive the persistent user-group memberships through a single Node:
// the records live in hub.UserGroups, their effect on connections in hub.Registry.

func TestUserGroupPersistentNoTTL(t *testing.T) {
	r, clk, j := newClocked(t)
	now1 := hubtest.NewClient("h", "c1", "alice", j)
	r.Add(now1)
	r.AddUserToGroup("h", "alice", "g", nil)
	if !r.UserInGroup("h", "alice", "g") {
		t.Fatal("alice should be in g")
	}
	later := hubtest.NewClient("h", "c2", "alice", j)
	r.Add(later) // future connections join
	r.SendGroup("h", "g", payload("x"), nil)
	if len(now1.Got()) != 1 || len(later.Got()) != 1 {
		t.Fatalf("current got %q, future got %q", now1.Got(), later.Got())
	}
	// Offline user stays a member.
	r.Remove(now1)
	r.Remove(later)
	if !r.UserInGroup("h", "alice", "g") {
		t.Fatal("persistent membership lost when user went offline")
	}
	clk.Advance(hub.DefaultUserGroupLifetime - time.Second)
	if !r.UserInGroup("h", "alice", "g") {
		t.Fatal("membership expired early")
	}
	clk.Advance(time.Second)
	if r.UserInGroup("h", "alice", "g") {
		t.Fatal("membership without ttl must expire after a year")
	}
	again := hubtest.NewClient("h", "c3", "alice", j)
	r.Add(again)
	if r.GroupExists("h", "g") {
		t.Fatal("expired membership applied to a new connection")
	}
}

func TestUserGroupTTL(t *testing.T) {
	r, clk, j := newClocked(t)
	c1 := hubtest.NewClient("h", "c1", "bob", j)
	r.Add(c1)
	r.AddToGroup("h", "direct", "c1")
	r.AddUserToGroup("h", "bob", "g", dur(10*time.Second))
	r.AddUserToGroup("h", "bob", "direct", dur(10*time.Second))
	clk.Advance(5 * time.Second)
	c2 := hubtest.NewClient("h", "c2", "bob", j)
	r.Add(c2)
	if got := r.GroupConnections("h", "g"); len(got) != 2 {
		t.Fatalf("group g = %v, want both connections", got)
	}
	clk.Advance(5 * time.Second)
	// Expiry takes the connections out of the group it put them in...
	r.SendGroup("h", "g", payload("late"), nil)
	if len(c1.Got()) != 0 || len(c2.Got()) != 0 {
		t.Fatal("expired membership still delivered")
	}
	if r.UserInGroup("h", "bob", "g") || r.GroupExists("h", "g") {
		t.Fatal("expired membership still visible")
	}
	// ...but not out of a group the connection joined directly.
	if got := r.GroupConnections("h", "direct"); !slices.Equal(got, []hub.ConnectionInfo{{ConnectionID: "c1", UserID: "bob"}}) {
		t.Fatalf("direct group = %v, want only c1", got)
	}
	c3 := hubtest.NewClient("h", "c3", "bob", j)
	r.Add(c3)
	if r.UserInGroup("h", "bob", "g") {
		t.Fatal("new connection joined an expired group")
	}
}

func TestUserGroupTTLZero(t *testing.T) {
	r, _, j := newClocked(t)
	r.AddUserToGroup("h", "carol", "g", dur(0)) // offline: nothing happens
	if r.UserInGroup("h", "carol", "g") {
		t.Fatal("ttl=0 must not create a persistent membership")
	}
	c1 := hubtest.NewClient("h", "c1", "carol", j)
	r.Add(c1)
	r.AddUserToGroup("h", "carol", "g", dur(0))
	if !r.UserInGroup("h", "carol", "g") {
		t.Fatal("current connection should be in g")
	}
	c2 := hubtest.NewClient("h", "c2", "carol", j)
	r.Add(c2)
	if got := r.GroupConnections("h", "g"); !slices.Equal(got, []hub.ConnectionInfo{{ConnectionID: "c1", UserID: "carol"}}) {
		t.Fatalf("group = %v, want only the connection current at ttl=0", got)
	}
	r.Remove(c1)
	if r.UserInGroup("h", "carol", "g") {
		t.Fatal("ttl=0 membership must die with the connection")
	}
}

func TestUserGroupCap(t *testing.T) {
	r := newTestNode(t, nil, 3)
	j := hubtest.NewProto("json")
	c := hubtest.NewClient("h", "c1", "u", j)
	r.Add(c)
	for i := range 3 {
		r.AddUserToGroup("h", "u", fmt.Sprint("g", i), nil)
	}
	r.AddUserToGroup("h", "u", "g0", nil) // refresh g0: g1 is now the oldest
	r.AddUserToGroup("h", "u", "ttl", dur(time.Hour))
	r.AddUserToGroup("h", "u", "g3", nil)
	for group, want := range map[string]bool{"g0": true, "g1": false, "g2": true, "g3": true, "ttl": true} {
		if got := r.UserInGroup("h", "u", group); got != want {
			t.Errorf("UserInGroup(%s) = %v, want %v", group, got, want)
		}
	}
}

func TestUserGroupDefaultCap100(t *testing.T) {
	r := newTestNode(t, nil, 0)
	for i := range 101 {
		r.AddUserToGroup("h", "u", fmt.Sprint("g", i), nil)
	}
	if r.UserInGroup("h", "u", "g0") {
		t.Fatal("101st group should evict the oldest")
	}
	if !r.UserInGroup("h", "u", "g1") || !r.UserInGroup("h", "u", "g100") {
		t.Fatal("the 100 most recent groups must be kept")
	}
}

func TestRemoveUserFromGroups(t *testing.T) {
	r, _, j := newClocked(t)
	c1 := hubtest.NewClient("h", "c1", "dave", j)
	r.Add(c1)
	r.AddToGroup("h", "g", "c1")
	r.AddUserToGroup("h", "dave", "g", nil)
	r.AddUserToGroup("h", "dave", "g2", nil)
	r.AddToGroup("h", "g3", "c1")

	r.RemoveUserFromGroup("h", "dave", "g")
	if r.UserInGroup("h", "dave", "g") || r.GroupExists("h", "g") {
		t.Fatal("RemoveUserFromGroup must drop record and direct membership")
	}
	c2 := hubtest.NewClient("h", "c2", "dave", j)
	r.Add(c2)
	if r.GroupExists("h", "g") {
		t.Fatal("removed membership applied to new connection")
	}
	if len(r.GroupConnections("h", "g2")) != 2 {
		t.Fatal("g2 should still hold both connections")
	}
	r.RemoveUserFromAllGroups("h", "dave")
	for _, g := range []string{"g", "g2", "g3"} {
		if r.GroupExists("h", g) || r.UserInGroup("h", "dave", g) {
			t.Fatalf("group %s not left", g)
		}
	}
	r.Add(hubtest.NewClient("h", "c3", "dave", j))
	if r.GroupExists("h", "g2") {
		t.Fatal("RemoveUserFromAllGroups must forget persistent memberships")
	}
	// Unknown hubs are harmless.
	r.RemoveUserFromGroup("nohub", "x", "g")
	r.RemoveUserFromAllGroups("nohub", "x")
	r.RemoveFromAllGroups("nohub", "x")
	if r.UserInGroup("nohub", "x", "g") || r.UserExists("nohub", "x") {
		t.Fatal("unknown hub reported membership")
	}
}

func TestUserGroupRefreshExtendsTTL(t *testing.T) {
	r, clk, j := newClocked(t)
	r.Add(hubtest.NewClient("h", "c1", "u", j))
	r.AddUserToGroup("h", "u", "g", dur(10*time.Second))
	clk.Advance(5 * time.Second)
	r.AddUserToGroup("h", "u", "g", dur(10*time.Second)) // the first expiry is now stale
	clk.Advance(6 * time.Second)
	if !r.UserInGroup("h", "u", "g") || !r.GroupExists("h", "g") {
		t.Fatal("a refreshed membership expired at its old time")
	}
	clk.Advance(4 * time.Second)
	if r.UserInGroup("h", "u", "g") || r.GroupExists("h", "g") {
		t.Fatal("a refreshed membership outlived its new ttl")
	}
	// Removing and re-adding must not be expired by the removed record's entry.
	r.AddUserToGroup("h", "u", "g2", dur(10*time.Second))
	r.RemoveUserFromGroup("h", "u", "g2")
	clk.Advance(5 * time.Second)
	r.AddUserToGroup("h", "u", "g2", dur(10*time.Second))
	clk.Advance(6 * time.Second)
	if !r.UserInGroup("h", "u", "g2") {
		t.Fatal("a re-added membership expired with the removed one's schedule")
	}
}

// CloseGroup must see the group as SendGroup does: a user whose ttl membership
// expired is no longer in it and must not be closed with it.
func TestCloseGroupSkipsExpiredUserMembership(t *testing.T) {
	r, clk, j := newClocked(t)
	c1 := hubtest.NewClient("h", "c1", "bob", j)
	r.Add(c1)
	r.AddUserToGroup("h", "bob", "g", dur(10*time.Second))
	clk.Advance(11 * time.Second)
	r.CloseGroup("h", "g", nil, "bye")
	if closed, _ := c1.Closed(); closed {
		t.Fatal("CloseGroup closed a connection whose group membership had expired")
	}
	if _, ok := r.Connection("h", "c1"); !ok {
		t.Fatal("connection left the registry")
	}
}
