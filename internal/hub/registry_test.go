package hub

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
)

func TestAddRemoveConnection(t *testing.T) {
	r := New(nil)
	j := hubtest.NewProto("json")
	c := hubtest.NewClient("Chat", "c1", "alice", j)
	r.Add(c)
	if got, ok := r.Connection("chat", "c1"); !ok || got != c {
		t.Fatalf("Connection(chat) = %v, %v", got, ok)
	}
	if _, ok := r.Connection("CHAT", "c1"); !ok {
		t.Fatal("hub names must be case-insensitive")
	}
	if !r.UserExists("chat", "alice") || r.UserExists("chat", "Alice") {
		t.Fatal("user ids are case-sensitive and alice must exist")
	}
	if r.ConnectionCount("chat") != 1 {
		t.Fatalf("ConnectionCount = %d", r.ConnectionCount("chat"))
	}
	// A different client object with the same id must not remove the registered one.
	r.Remove(hubtest.NewClient("chat", "c1", "alice", j))
	if _, ok := r.Connection("chat", "c1"); !ok {
		t.Fatal("Remove of a stale client removed the live one")
	}
	r.Remove(c)
	if _, ok := r.Connection("chat", "c1"); ok {
		t.Fatal("connection still registered after Remove")
	}
	if r.UserExists("chat", "alice") {
		t.Fatal("user still exists after its only connection left")
	}
	r.Remove(c) // idempotent
}

func TestAddReplacesSameID(t *testing.T) {
	r := New(nil)
	j := hubtest.NewProto("json")
	old := hubtest.NewClient("h", "c1", "u1", j)
	r.Add(old)
	r.AddToGroup("h", "g", "c1")
	nw := hubtest.NewClient("h", "c1", "u2", j)
	r.Add(nw)
	if r.UserExists("h", "u1") || !r.UserExists("h", "u2") {
		t.Fatal("replaced connection's user index not updated")
	}
	if r.GroupExists("h", "g") {
		t.Fatal("replaced connection kept the old connection's groups")
	}
}

func TestSendVariants(t *testing.T) {
	r := New(nil)
	j, m := hubtest.NewProto("json"), hubtest.NewProto("messagepack")
	a1 := hubtest.NewClient("h", "a1", "alice", j)
	a2 := hubtest.NewClient("h", "a2", "alice", m)
	b1 := hubtest.NewClient("h", "b1", "bob", j)
	other := hubtest.NewClient("other", "o1", "alice", j)
	for _, c := range []*hubtest.Client{a1, a2, b1, other} {
		r.Add(c)
	}

	r.SendAll("H", msg("all"), []string{"b1"})
	r.SendUser("h", "alice", msg("user"))
	if !r.SendConnection("h", "b1", msg("conn")) {
		t.Fatal("SendConnection to live connection returned false")
	}
	if r.SendConnection("h", "nope", msg("conn")) {
		t.Fatal("SendConnection to unknown connection returned true")
	}
	r.AddToGroup("h", "g", "a1")
	r.AddToGroup("h", "g", "b1")
	r.SendGroup("h", "g", msg("group"), []string{"a1"})
	r.SendGroup("h", "G", msg("wrongcase"), nil)
	r.SendAll("missing-hub", msg("x"), nil)

	want := map[*hubtest.Client][]string{
		a1:    {"json:all", "json:user"},
		a2:    {"messagepack:all", "messagepack:user"},
		b1:    {"json:conn", "json:group"},
		other: nil,
	}
	for c, w := range want {
		if got := c.Got(); !slices.Equal(got, w) {
			t.Errorf("%s got %q, want %q", c.ID(), got, w)
		}
	}
}

func TestPayloadEncodedOncePerProtocol(t *testing.T) {
	r := New(nil)
	j, m := hubtest.NewProto("json"), hubtest.NewProto("messagepack")
	for i := range 50 {
		p := j
		if i%2 == 1 {
			p = m
		}
		r.Add(hubtest.NewClient("h", fmt.Sprint("c", i), "", p))
	}
	pl := msg("t")
	r.SendAll("h", pl, nil)
	r.SendAll("h", pl, nil) // a second broadcast reuses the cached frames
	if j.Encodes.Load() != 1 || m.Encodes.Load() != 1 {
		t.Fatalf("encodes json=%d messagepack=%d, want 1 each", j.Encodes.Load(), m.Encodes.Load())
	}
}

func TestPayloadFromFramesMissingProtocol(t *testing.T) {
	var logs bytes.Buffer
	r := New(slog.New(slog.NewTextHandler(&logs, nil)))
	j, m := hubtest.NewProto("json"), hubtest.NewProto("messagepack")
	cj := hubtest.NewClient("h", "j", "", j)
	cm := hubtest.NewClient("h", "m", "", m)
	r.Add(cj)
	r.Add(cm)
	p := PayloadFromFrames(map[string][]byte{"json": []byte("prejson")})
	r.SendAll("h", p, nil)
	if got := cj.Got(); !slices.Equal(got, []string{"prejson"}) {
		t.Fatalf("json client got %q", got)
	}
	if got := cm.Got(); len(got) != 0 {
		t.Fatalf("messagepack client got %q, want nothing", got)
	}
	if _, err := p.Frame(m); err == nil {
		t.Fatal("Frame for a missing protocol must fail")
	}
	if r.SendConnection("h", "m", p) {
		t.Fatal("SendConnection without a frame must report false")
	}
	if j.Encodes.Load() != 0 {
		t.Fatal("pre-framed payload must not encode")
	}
	if out := logs.String(); strings.Count(out, "skipping recipients") != 1 || !strings.Contains(out, "protocol=messagepack") {
		t.Fatalf("want one warning naming the protocol, got %q", out)
	}
}

func TestPayloadConcurrentFrame(t *testing.T) {
	j := hubtest.NewProto("json")
	p := msg("x")
	var wg sync.WaitGroup
	frames := make([][]byte, 8)
	for i := range frames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := p.Frame(j)
			if err != nil {
				t.Error(err)
			}
			frames[i] = f
		}()
	}
	wg.Wait()
	if j.Encodes.Load() != 1 {
		t.Fatalf("encoded %d times, want 1", j.Encodes.Load())
	}
	for _, f := range frames {
		if string(f) != "json:x" {
			t.Fatalf("frame %q", f)
		}
	}
	if _, err := p.Frame(nil); err == nil {
		t.Fatal("Frame(nil) must fail")
	}
}

// A client without a protocol is skipped, not a panic.
func TestClientWithoutProtocolSkipped(t *testing.T) {
	r := New(nil)
	bad := hubtest.NewClient("h", "bad", "", nil)
	good := hubtest.NewClient("h", "good", "", hubtest.NewProto("json"))
	r.Add(bad)
	r.Add(good)
	r.SendAll("h", msg("x"), nil)
	if r.SendConnection("h", "bad", msg("y")) {
		t.Fatal("SendConnection to a client without protocol reported success")
	}
	if len(bad.Got()) != 0 || len(good.Got()) != 1 {
		t.Fatalf("bad %q good %q", bad.Got(), good.Got())
	}
}

func TestEncodeErrorSkipsRecipients(t *testing.T) {
	r := New(nil)
	bad := failingProto("json")
	good := hubtest.NewProto("messagepack")
	cb, cg := hubtest.NewClient("h", "b", "", bad), hubtest.NewClient("h", "g", "", good)
	r.Add(cb)
	r.Add(cg)
	r.SendAll("h", msg("x"), nil)
	if len(cb.Got()) != 0 || len(cg.Got()) != 1 {
		t.Fatalf("bad got %q, good got %q", cb.Got(), cg.Got())
	}
}

func TestManyExcluded(t *testing.T) {
	r := New(nil)
	j := hubtest.NewProto("json")
	var clients []*hubtest.Client
	var excluded []string
	for i := range 20 {
		c := hubtest.NewClient("h", fmt.Sprint("c", i), "", j)
		clients = append(clients, c)
		r.Add(c)
		r.AddToGroup("h", "g", c.ID())
		if i < 15 {
			excluded = append(excluded, c.ID())
		}
	}
	r.SendAll("h", msg("a"), excluded)
	r.SendGroup("h", "g", msg("g"), excluded)
	for i, c := range clients {
		want := 2
		if i < 15 {
			want = 0
		}
		if n := len(c.Got()); n != want {
			t.Errorf("%s got %d frames, want %d", c.ID(), n, want)
		}
	}
}

func TestConnectionGroups(t *testing.T) {
	r := New(nil)
	j := hubtest.NewProto("json")
	r.Add(hubtest.NewClient("h", "c2", "u2", j))
	r.Add(hubtest.NewClient("h", "c1", "u1", j))
	if ok, err := r.AddToGroup("h", "g", "nope"); ok || err != nil {
		t.Fatalf("AddToGroup of unknown connection = %v, %v", ok, err)
	}
	for _, a := range [][2]string{{"g", "c2"}, {"g", "c1"}, {"g2", "c1"}} {
		if ok, err := r.AddToGroup("h", a[0], a[1]); !ok || err != nil {
			t.Fatalf("AddToGroup(%s, %s) = %v, %v", a[0], a[1], ok, err)
		}
	}
	if !r.GroupExists("h", "g") || r.GroupExists("h", "G") {
		t.Fatal("group names are case-sensitive")
	}
	if !r.UserInGroup("h", "u1", "g") || r.UserInGroup("h", "u1", "g3") {
		t.Fatal("UserInGroup through connection membership wrong")
	}
	got := r.GroupConnections("h", "g")
	want := []ConnectionInfo{{"c1", "u1"}, {"c2", "u2"}}
	if !slices.Equal(got, want) {
		t.Fatalf("GroupConnections = %v, want %v", got, want)
	}
	if r.RemoveFromGroup("h", "g", "nope") {
		t.Fatal("RemoveFromGroup of unknown connection returned true")
	}
	if !r.RemoveFromGroup("h", "g", "c2") {
		t.Fatal("RemoveFromGroup failed")
	}
	r.RemoveFromAllGroups("h", "c1")
	if r.GroupExists("h", "g") || r.GroupExists("h", "g2") {
		t.Fatal("groups should be empty")
	}
	if len(r.GroupConnections("h", "g")) != 0 || r.GroupConnections("none", "g") != nil {
		t.Fatal("empty listings expected")
	}
}

func TestCloseOperations(t *testing.T) {
	r := New(nil)
	j := hubtest.NewProto("json")
	mk := func(id, user string) *hubtest.Client {
		c := hubtest.NewClient("h", id, user, j)
		r.Add(c)
		return c
	}
	a1, a2, b1, b2, c1 := mk("a1", "a"), mk("a2", "a"), mk("b1", "b"), mk("b2", "b"), mk("c1", "c")
	r.AddToGroup("h", "g", "b1")
	r.AddToGroup("h", "g", "b2")

	if r.CloseConnection("h", "zz", "r") {
		t.Fatal("CloseConnection of unknown id returned true")
	}
	if !r.CloseConnection("h", "c1", "bye") {
		t.Fatal("CloseConnection failed")
	}
	if closed, reason := c1.Closed(); !closed || reason != "bye" {
		t.Fatalf("c1 closed=%v reason=%q", closed, reason)
	}
	if _, ok := r.Connection("h", "c1"); ok {
		t.Fatal("closed connection still registered")
	}
	r.Remove(c1) // the transport's later Remove is a no-op

	r.CloseUser("h", "a", []string{"a2"}, "user")
	r.CloseGroup("h", "g", []string{"b1"}, "group")
	if closed, _ := a1.Closed(); !closed {
		t.Fatal("a1 not closed")
	}
	if closed, _ := a2.Closed(); closed {
		t.Fatal("excluded a2 closed")
	}
	if closed, reason := b2.Closed(); !closed || reason != "group" {
		t.Fatal("b2 not closed by group")
	}
	r.CloseAll("h", []string{"b1"}, "all")
	if closed, reason := a2.Closed(); !closed || reason != "all" {
		t.Fatal("a2 not closed by CloseAll")
	}
	if closed, _ := b1.Closed(); closed {
		t.Fatal("excluded b1 closed by CloseAll")
	}
	if r.ConnectionCount("h") != 1 {
		t.Fatalf("ConnectionCount = %d, want 1", r.ConnectionCount("h"))
	}
}

// A Send that calls back into the registry would deadlock if fan-out held a lock.
func TestFanOutHoldsNoLock(t *testing.T) {
	r := New(nil)
	j := hubtest.NewProto("json")
	c := hubtest.NewClient("h", "c1", "u", j)
	c.OnSend = func() {
		r.AddToGroup("h", "later", "c1")
		r.Remove(c)
	}
	r.Add(c)
	r.AddToGroup("h", "g", "c1")
	done := make(chan struct{})
	go func() {
		r.SendGroup("h", "g", msg("x"), nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("SendGroup deadlocked: a lock is held while sending")
	}
	if _, ok := r.Connection("h", "c1"); ok {
		t.Fatal("Remove inside Send had no effect")
	}
}

func TestConcurrentUse(t *testing.T) {
	r := New(nil)
	j, m := hubtest.NewProto("json"), hubtest.NewProto("messagepack")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p := j
				if i%2 == 0 {
					p = m
				}
				c := hubtest.NewClient("h", fmt.Sprintf("w%d-%d", w, i), fmt.Sprint("u", i%5), p)
				r.Add(c)
				r.AddToGroup("h", "g", c.ID())
				r.JoinUser("h", c.UserID(), fmt.Sprint("ug", i%3))
				r.SendAll("h", msg("a"), nil)
				r.SendGroup("h", "ug1", msg("g"), []string{c.ID()})
				r.SendUser("h", c.UserID(), msg("u"))
				_ = r.UserInGroup("h", c.UserID(), "g")
				_ = r.GroupConnections("h", "g")
				if i%3 == 0 {
					r.RemoveUserFromGroup("h", c.UserID(), "ug0")
				}
				if i%2 == 0 {
					r.Remove(c)
				} else {
					r.CloseConnection("h", c.ID(), "done")
				}
			}
		}()
	}
	wg.Wait()
	if n := r.ConnectionCount("h"); n != 0 {
		t.Fatalf("ConnectionCount = %d after all removed", n)
	}
	if r.GroupExists("h", "g") {
		t.Fatal("group g should be empty")
	}
}

// The fan-out loop allocates nothing per recipient: with the frames cached, a
// broadcast to 2,000 connections allocates nothing at all.
func TestFanOutDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	r := New(nil)
	j, m := hubtest.NewProto("json"), hubtest.NewProto("messagepack")
	for i := range 2000 {
		p := j
		if i%2 == 1 {
			p = m
		}
		c := &benchClient{id: fmt.Sprint("c", i), proto: p} // counts without allocating
		r.Add(c)
		r.AddToGroup("bench", "g", c.ID())
	}
	p := msg("x")
	r.SendAll("bench", p, nil) // encode once, warm the pool
	allocs := testing.AllocsPerRun(50, func() {
		r.SendAll("bench", p, []string{"c1"})
		r.SendGroup("bench", "g", p, nil)
		r.SendConnection("bench", "c7", p)
	})
	if allocs > 0 {
		t.Fatalf("%.1f allocations per broadcast pair, want 0", allocs)
	}
}

// The user index is a list per user: removing the first, a middle or the last of a
// user's connections keeps the others reachable, and closing the user reaches all.
func TestUserIndexRemoveAnyPosition(t *testing.T) {
	j := hubtest.NewProto("json")
	for _, gone := range []int{0, 1, 2} {
		r := New(nil)
		cs := make([]*hubtest.Client, 3)
		for i := range cs {
			cs[i] = hubtest.NewClient("h", fmt.Sprintf("c%d", i), "u", j)
			r.Add(cs[i])
		}
		r.Remove(cs[gone])
		r.SendUser("h", "u", msg("m"))
		r.JoinUser("h", "u", "g")
		for i, c := range cs {
			want := 1
			if i == gone {
				want = 0
			}
			if got := len(c.Take()); got != want {
				t.Fatalf("removed c%d: c%d got %d frames, want %d", gone, i, got, want)
			}
		}
		if n := len(r.GroupConnections("h", "g")); n != 2 {
			t.Fatalf("removed c%d: %d connections joined the group, want 2", gone, n)
		}
		r.CloseUser("h", "u", nil, "bye")
		if r.UserExists("h", "u") || r.ConnectionCount("h") != 0 {
			t.Fatalf("removed c%d: user still exists after CloseUser", gone)
		}
		for i, c := range cs {
			if closed, _ := c.Closed(); closed != (i != gone) {
				t.Fatalf("removed c%d: c%d closed=%v", gone, i, closed)
			}
		}
	}
}
