package hub

import (
	"errors"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
)

// TestGroupLimitPerConnection: a connection at SetMaxGroups is not added to another
// group by id (nor by the ttl=0 user form); a group it is in already, a group it
// joined through its user, and other connections are unaffected; 0 is unlimited.
func TestGroupLimitPerConnection(t *testing.T) {
	r := New(nil)
	r.SetMaxGroups(2)
	j := hubtest.NewProto("json")
	r.Add(hubtest.NewClient("h", "c1", "u1", j))
	r.Add(hubtest.NewClient("h", "c2", "u1", j))
	add := func(group, id string) error {
		t.Helper()
		ok, err := r.AddToGroup("h", group, id)
		if !ok {
			t.Fatalf("AddToGroup(%s, %s): no such connection", group, id)
		}
		return err
	}
	for _, g := range []string{"a", "b", "b"} {
		if err := add(g, "c1"); err != nil {
			t.Fatalf("add c1 to %s: %v", g, err)
		}
	}
	var gl *GroupLimitError
	if err := add("c", "c1"); !errors.As(err, &gl) || gl.Limit != 2 || gl.User {
		t.Fatalf("third group: %v, want a connection GroupLimitError of 2", err)
	}
	if r.GroupExists("h", "c") {
		t.Fatal("the refused add took effect")
	}
	if err := add("c", "c2"); err != nil {
		t.Fatalf("another connection: %v", err)
	}
	// ttl=0: c1 is full and left out, c2 has room.
	if skipped := r.JoinUserNow("h", "u1", "d"); skipped != 1 {
		t.Fatalf("JoinUserNow skipped %d, want 1", skipped)
	}
	if got := r.GroupConnections("h", "d"); len(got) != 1 || got[0].ConnectionID != "c2" {
		t.Fatalf("group d: %+v", got)
	}
	// A persistent user membership joins regardless: it is bounded where it is recorded.
	r.JoinUser("h", "u1", "e")
	if len(r.GroupConnections("h", "e")) != 2 {
		t.Fatal("the user membership did not reach both connections")
	}
	r.SetMaxGroups(0)
	if err := add("c", "c1"); err != nil {
		t.Fatalf("unlimited: %v", err)
	}
	if ok, err := r.AddToGroup("h", "x", "nope"); ok || err != nil {
		t.Fatalf("unknown connection: %v %v", ok, err)
	}
}

// TestAddWithinLimit: a user's persistent memberships stop at the limit; refreshing
// one it has, or one that pushes the oldest without ttl off the cap, is no new one;
// expired ones do not count.
func TestAddWithinLimit(t *testing.T) {
	clk := hubtest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	u := NewUserGroups(UserGroupOptions{Now: clk.Now, MaxNoTTL: 2})
	ttl := func(d time.Duration) *time.Duration { return &d }
	must := func(group string, d *time.Duration) {
		t.Helper()
		if _, err := u.AddWithin("h", "u", group, d, 3); err != nil {
			t.Fatalf("add %s: %v", group, err)
		}
	}
	must("t1", ttl(time.Minute))
	must("n1", nil)
	must("n2", nil)
	var gl *GroupLimitError
	if _, err := u.AddWithin("h", "u", "t2", ttl(time.Hour), 3); !errors.As(err, &gl) || !gl.User || gl.Limit != 3 {
		t.Fatalf("fourth: %v, want a user GroupLimitError of 3", err)
	}
	if u.Has("h", "u", "t2") {
		t.Fatal("the refused membership was recorded")
	}
	must("t1", ttl(time.Hour)) // a refresh
	if dropped, err := u.AddWithin("h", "u", "n3", nil, 3); err != nil || len(dropped) != 1 || dropped[0] != "n1" {
		t.Fatalf("a no-ttl add at the cap: %v %v, want n1 dropped", dropped, err)
	}
	clk.Advance(2 * time.Hour) // t1 expires
	must("t3", ttl(time.Hour))
	if _, err := u.AddWithin("h", "other", "x", nil, 3); err != nil {
		t.Fatalf("another user: %v", err)
	}
}
