package server

import (
	"fmt"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/signalbox-io/signalbox/internal/transport"
)

// TestIdleWebSocketCost keeps the per-connection cost of an idle WebSocket in check:
// no goroutine (the event loop reads it when it has bytes) and a bounded heap. The
// connections still work afterwards.
func TestIdleWebSocketCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 200 connections")
	}
	ts := startServer(t, nil)
	query := "hub=chat&access_token=" + url.QueryEscape(ts.token("chat", ""))
	const n = 200
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	conns := connectRaw(t, ts, query, n)
	// Handlers return and writers end once the handshake responses are written.
	var perConn float64
	deadline := time.Now().Add(5 * time.Second)
	for {
		perConn = float64(runtime.NumGoroutine()-g0) / n
		if perConn <= 0.1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The test's own sockets (about 1 KB each) are counted in too.
	heap := float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / n
	stack := float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
	t.Logf("per idle WebSocket: %.2f goroutines, %.0f B heap, %.0f B stack", perConn, heap, stack)
	// The event loop and its few parked readers are shared by all connections.
	if perConn > 0.1 {
		t.Fatalf("%.2f goroutines per idle connection, want none", perConn)
	}
	if heap > 12<<10 {
		t.Fatalf("%.0f B heap per idle connection", heap)
	}
	broadcast(ts.s, "chat", "m", "hi")
	for i, c := range conns {
		if _, p, err := c.readMessage(5 * time.Second); err != nil || !strings.Contains(string(p), `"hi"`) {
			t.Fatalf("conn %d: %q %v", i, p, err)
		}
	}
	conns[0].send([]byte(`{"type":1,"invocationId":"1","target":"x","arguments":[]}` + "\x1e"))
	if _, p, err := conns[0].readMessage(5 * time.Second); err != nil || !strings.Contains(string(p), `"type":3`) {
		t.Fatalf("completion %q %v", p, err)
	}
}

// A broadcast to idle WebSocket connections writes to them from the broadcasting
// goroutine: it used to start a writer goroutine per recipient, whose start and
// wake-up cost more than the write itself (docs/performance.md, S1). Every message
// still arrives, in order.
func TestBroadcastToIdleConnectionsStartsNoGoroutinePerRecipient(t *testing.T) {
	ts := startServer(t, nil)
	query := "hub=chat&access_token=" + url.QueryEscape(ts.token("chat", ""))
	const n, messages = 100, 10
	conns := connectRaw(t, ts, query, n)
	created := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(created)
	before := created[0].Value.Uint64()
	for m := range messages {
		broadcast(ts.s, "chat", "m", fmt.Sprint("message ", m))
	}
	metrics.Read(created)
	started := created[0].Value.Uint64() - before
	expectMessages(t, conns, messages)
	t.Logf("%d goroutines started for %d deliveries", started, n*messages)
	if started > n/4 {
		t.Fatalf("%d goroutines started for %d broadcasts to %d idle connections", started, messages, n)
	}
}

// expectMessages reads "message 0" to "message <messages-1>", in order, on every
// connection (a WebSocket message may carry several records: a batch).
func expectMessages(t *testing.T, conns []*rawWS, messages int) {
	t.Helper()
	for i, c := range conns {
		var records []string
		for len(records) < messages {
			_, p, err := c.readMessage(5 * time.Second)
			if err != nil {
				t.Fatalf("conn %d after %d records: %v", i, len(records), err)
			}
			records = append(records, strings.Split(strings.TrimSuffix(string(p), "\x1e"), "\x1e")...)
		}
		for m, r := range records {
			if want := fmt.Sprintf(`"message %d"`, m); !strings.Contains(r, want) {
				t.Fatalf("conn %d, record %d: %q, want %s", i, m, r, want)
			}
		}
	}
}

// connectRaw opens n raw WebSockets to hub chat with completed handshakes and waits
// until all are registered.
func connectRaw(t *testing.T, ts *testServer, query string, n int) []*rawWS {
	t.Helper()
	conns := make([]*rawWS, 0, n)
	for i := 0; i < n; i++ {
		rw := ts.upgradeRaw(query)
		rw.handshake()
		conns = append(conns, rw)
	}
	waitFor(t, 5*time.Second, "registrations", func() bool { return ts.s.Registry().ConnectionCount("chat") == n })
	return conns
}

// TestIdleStructSizes keeps what every idle WebSocket connection holds at its size
// class (docs/performance.md, S4: ~5 KB of RSS per connection at 10,000 against a
// goal of 6 KB). A field only some connections use belongs behind a pointer that
// stays nil without it (see conn.up, conn.set, statefulConn); raise a bound only
// together with a new S4 figure.
func TestIdleStructSizes(t *testing.T) {
	for _, s := range []struct {
		name       string
		size, want uintptr
	}{
		{"server.conn", unsafe.Sizeof(conn{}), 416},
		{"transport.WebSocket", unsafe.Sizeof(transport.WebSocket{}), 176},
		{"transport.Outbox", unsafe.Sizeof(transport.Outbox{}), 80},
	} {
		if s.size > s.want {
			t.Errorf("%s is %d bytes, over its %d-byte size class", s.name, s.size, s.want)
		}
	}
}
