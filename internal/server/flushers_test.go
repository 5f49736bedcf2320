package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signalbox-io/signalbox/internal/transport"
)

// A broadcast's writes are gathered into io_uring batches (Linux) or, where
// io_uring is off, written one by one: either way every connection gets every
// message, in order; the batches come back to the pool after each fan-out and are
// released by Shutdown.
func TestBroadcastThroughGatheredAndDirectWrites(t *testing.T) {
	for _, gathered := range []bool{true, false} {
		t.Run(fmt.Sprint("gathered=", gathered), func(t *testing.T) {
			var s *Server
			t.Cleanup(func() { // registered first: runs after the server's Shutdown
				s.flushers.mu.Lock()
				defer s.flushers.mu.Unlock()
				if s.flushers.made != 0 || len(s.flushers.free) != 0 {
					t.Errorf("after Shutdown: %d batches not released, %d free", s.flushers.made, len(s.flushers.free))
				}
			})
			ts := startServer(t, nil)
			s = ts.s
			if !gathered {
				s.flushers.mu.Lock()
				s.flushers.off = true
				s.flushers.mu.Unlock()
			}
			broadcastToRaw(t, ts, 40, 20)
			s.flushers.mu.Lock()
			made, free := s.flushers.made, len(s.flushers.free)
			s.flushers.mu.Unlock()
			if gathered && (made == 0 || made != free) {
				t.Fatalf("%d batches made, %d back in the pool: want some, all back", made, free)
			}
			if !gathered && made != 0 {
				t.Fatalf("%d batches made with io_uring off", made)
			}
		})
	}
}

// Where io_uring cannot be set up (a seccomp profile, kernel.io_uring_disabled), the
// first fan-out says so once in the log and every broadcast is written directly.
func TestBroadcastWithoutIOURing(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s, err := New(fastConfig(), logger)
	if err != nil {
		t.Fatal(err)
	}
	var tries atomic.Int32
	s.flushers.newBatch = func() (*transport.SendBatch, error) {
		tries.Add(1)
		return nil, errors.New("io_uring_setup: operation not permitted")
	}
	broadcastToRaw(t, serveOn(t, s), 10, 5)
	if tries.Load() != 1 {
		t.Fatalf("io_uring set up %d times, want once", tries.Load())
	}
	got := logs.String()
	if c := strings.Count(got, "io_uring unavailable"); c != 1 || !strings.Contains(got, "operation not permitted") {
		t.Fatalf("logged %d times, want once with the reason:\n%s", c, got)
	}
}

// broadcastToRaw connects n raw WebSockets to hub chat, broadcasts "message 0" to
// "message <messages-1>" to them and checks that each gets them all, in order.
func broadcastToRaw(t *testing.T, ts *testServer, n, messages int) {
	t.Helper()
	conns := connectRaw(t, ts, "hub=chat&access_token="+url.QueryEscape(ts.token("chat", "")), n)
	for m := range messages {
		broadcast(ts.s, "chat", "m", fmt.Sprint("message ", m))
	}
	expectMessages(t, conns, messages)
}
