package server

import (
	"strings"
	"testing"
	"time"
)

// TestSweepSlots arms and disarms connections in any order: every armed connection
// keeps its own deadline, and the sweep's goroutine ends with the last one (goleak
// checks that at the end of the package).
func TestSweepSlots(t *testing.T) {
	s, err := New(fastConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &s.sweep
	// Deadlines an hour ahead: the running sweep must not fire these bare connections.
	base := time.Now().Add(time.Hour).UnixNano()
	cs := make([]*conn, 5)
	for i := range cs {
		cs[i] = &conn{s: s}
		w.arm(cs[i], base+int64(i))
	}
	w.arm(cs[2], base+5000) // re-arming keeps the slot
	check := func(live map[*conn]int64) {
		t.Helper()
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.conns) != len(live) || len(w.at) != len(live) {
			t.Fatalf("%d armed, %d deadlines, want %d", len(w.conns), len(w.at), len(live))
		}
		for c, at := range live {
			if i := c.sweepSlot - 1; i < 0 || w.conns[i] != c || w.at[i] != at {
				t.Fatalf("slot %d: wrong connection or deadline", c.sweepSlot)
			}
		}
	}
	check(map[*conn]int64{cs[0]: base, cs[1]: base + 1, cs[2]: base + 5000, cs[3]: base + 3, cs[4]: base + 4})
	w.disarm(cs[1]) // the last one moves into its slot
	w.disarm(cs[1]) // no-op
	check(map[*conn]int64{cs[0]: base, cs[2]: base + 5000, cs[3]: base + 3, cs[4]: base + 4})
	if due := w.collect(base+4, nil); len(due) != 3 {
		t.Fatalf("%d due, want 3", len(due))
	}
	check(map[*conn]int64{cs[0]: 0, cs[2]: base + 5000, cs[3]: 0, cs[4]: 0})
	for _, c := range []*conn{cs[4], cs[0], cs[2], cs[3]} {
		w.disarm(c)
	}
	check(map[*conn]int64{})
	w.mu.Lock()
	stopped := w.stop == nil
	w.mu.Unlock()
	if !stopped {
		t.Fatal("the sweep still runs with nothing armed")
	}
}

// TestSweepMeetsDeadlines: a connection that sends nothing is pinged every
// keep-alive interval and closed at the client timeout, each within a sweep period
// (a tenth of the shortest timeout) plus scheduling.
func TestSweepMeetsDeadlines(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.KeepAliveInterval = 100 * time.Millisecond
		c.ClientTimeout = 600 * time.Millisecond
	})
	rw := ts.upgradeRaw("hub=chat&access_token=" + ts.token("chat", ""))
	// Timed from before the handshake: the client's last message, from which the
	// server counts its timeout. Timed after its answer, a sweep that came soon after
	// the 600 ms made the interval look shorter than the server's (599.6 ms once).
	start := time.Now()
	rw.handshake()
	pings := 0
	for {
		_, p, err := rw.readMessage(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if string(p) == "{\"type\":6}\x1e" {
			pings++
			continue
		}
		if !strings.Contains(string(p), `"type":7`) {
			t.Fatalf("unexpected frame %q", p)
		}
		break
	}
	took := time.Since(start)
	if took < 600*time.Millisecond || took > 3*time.Second || pings < 3 {
		t.Fatalf("closed after %v with %d pings; want the 600 ms client timeout and a ping every 100 ms", took, pings)
	}
}
