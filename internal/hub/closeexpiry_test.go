package hub

import (
	"testing"
	"time"
)

// CloseGroup must see the group as SendGroup does: a user whose ttl membership
// expired is no longer in it and must not be closed with it.
func TestCloseGroupSkipsExpiredUserMembership(t *testing.T) {
	r, clk, j := newClocked()
	c1 := newFake("h", "c1", "bob", j)
	r.Add(c1)
	r.AddUserToGroup("h", "bob", "g", dur(10*time.Second))
	clk.Advance(11 * time.Second)
	r.CloseGroup("h", "g", nil, "bye")
	if closed, _ := c1.isClosed(); closed {
		t.Fatal("CloseGroup closed a connection whose group membership had expired")
	}
	if _, ok := r.Connection("h", "c1"); !ok {
		t.Fatal("connection left the registry")
	}
}
