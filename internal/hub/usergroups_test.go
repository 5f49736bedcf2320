package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
)

func TestExpiryScheduleStaysBounded(t *testing.T) {
	u := NewUserGroups(UserGroupOptions{})
	for i := range 5000 {
		u.Add("h", fmt.Sprint("u", i%3), fmt.Sprint("g", i%7), dur(time.Hour))
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.count != 21 {
		t.Fatalf("records = %d, want 21", u.count)
	}
	if n := len(u.heap); n > 2*u.count+65 {
		t.Fatalf("expiry heap has %d entries for %d records", n, u.count)
	}
}

func TestRecordCountTracksRemovals(t *testing.T) {
	u := NewUserGroups(UserGroupOptions{MaxNoTTL: 2})
	for i := range 5 {
		u.Add("h", "a", fmt.Sprint("g", i), nil) // cap drops 3
	}
	u.Add("h", "b", "x", nil)
	u.Add("h", "b", "y", nil)
	u.Remove("h", "b", "x")
	u.Remove("h", "b", "never")
	u.mu.Lock()
	got := u.count
	u.mu.Unlock()
	if got != 3 {
		t.Fatalf("records = %d, want 3", got)
	}
	u.RemoveAll("h", "a")
	u.mu.Lock()
	got = u.count
	u.mu.Unlock()
	if got != 1 {
		t.Fatalf("records = %d after RemoveUserFromAllGroups, want 1", got)
	}
}

func TestConnectionsSnapshot(t *testing.T) {
	r := New(nil)
	a, b := hubtest.NewClient("h", "a", "u1", hubtest.NewProto("json")), hubtest.NewClient("h", "b", "", hubtest.NewProto("json"))
	r.Add(a, "pg")
	r.Add(b)
	r.AddToGroup("h", "g1", "b")
	got := r.Connections("h")
	if len(got) != 2 || got[0].ConnectionID != "a" || got[0].UserID != "u1" || !got[0].Groups["pg"] ||
		got[1].ConnectionID != "b" || got[1].UserID != "" || !got[1].Groups["g1"] || got[1].Groups["pg"] {
		t.Fatalf("Connections = %+v", got)
	}
	r.AddToGroup("h", "g2", "b")
	if got[1].Groups["g2"] {
		t.Error("the snapshot changed after a join")
	}
	if r.Connections("nohub") != nil {
		t.Error("unknown hub listed connections")
	}
}
