package upstream

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// TestStalledUpstream: an upstream that never answers connection A must neither grow
// memory without bound nor hold up connection B.
func TestStalledUpstream(t *testing.T) {
	stalled := make(chan struct{}, 1)
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-ASRS-Connection-Id") == "A" {
			select {
			case stalled <- struct{}{}:
			default:
			}
			<-r.Context().Done() // never answers
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	u, err := New(Options{Rules: ParseRules([]string{f.srv.URL})})
	if err != nil {
		t.Fatal(err)
	}

	var queueFull, shutdown, other atomic.Int64
	replyA := func(frame []byte) {
		c := decodeCompletion(t, protocol.JSON(), frame)
		switch c.Error {
		case ErrTextQueueFull:
			queueFull.Add(1)
		case ErrTextShutdown:
			shutdown.Add(1)
		default:
			other.Add(1)
		}
	}
	a := u.Open(ConnInfo{ID: "A", Hub: "chat", Protocol: protocol.JSON()}, replyA)
	// 1 KiB per invocation: retaining the 10k rejected ones would show as 10 MB of heap.
	payload := strArg(t, strings.Repeat("p", 1024))
	inv := func(i int) *protocol.Invocation {
		return &protocol.Invocation{InvocationID: strconv.Itoa(i), Target: "slow", Arguments: []protocol.Value{payload}}
	}
	a.Invoke(inv(0))
	select {
	case <-stalled:
	case <-time.After(waitFor):
		t.Fatal("A's first invocation never reached the upstream")
	}
	for i := 1; i <= DefaultQueueSize; i++ { // fills the queue behind the stalled call
		a.Invoke(inv(i))
	}
	if n := queueFull.Load(); n != 0 {
		t.Fatalf("%d queue-full errors before the queue was full", n)
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	const extra = 10000
	start := time.Now()
	for i := range extra {
		a.Invoke(inv(1000 + i))
		if i == 0 && queueFull.Load() != 1 {
			t.Fatal("the first invocation over the limit was not rejected at once")
		}
	}
	elapsed := time.Since(start)
	if n := queueFull.Load(); n != extra {
		t.Fatalf("%d queue-full errors, want %d", n, extra)
	}
	if elapsed > 5*time.Second {
		t.Errorf("rejecting %d invocations took %v", extra, elapsed)
	}

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use growth over %d rejected invocations: %d bytes", extra, growth)
	if growth > 2<<20 {
		t.Errorf("heap in use grew by %d bytes over %d rejected invocations", growth, extra)
	}
	if g := runtime.NumGoroutine(); g > goroutinesBefore+5 {
		t.Errorf("goroutines %d, were %d", g, goroutinesBefore)
	}
	if st := u.Stats(); st.QueueFull != extra || st.InFlight != 1 {
		t.Errorf("stats %+v", st)
	}

	// B, another connection, is served promptly while A stays stalled.
	rb := newReplies(protocol.JSON())
	b := u.Open(ConnInfo{ID: "B", Hub: "chat", Protocol: protocol.JSON()}, rb.fn)
	b.Connected()
	for i := range 5 {
		start := time.Now()
		b.Invoke(inv(i))
		c := rb.next(t)
		if c.Error != "" || c.InvocationID != strconv.Itoa(i) {
			t.Fatalf("B got %+v", c)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("B's invocation took %v", d)
		}
	}
	b.Disconnected("")

	// Shutdown gives up on A: the stalled call and A's queue fail, and no goroutine leaks.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := u.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v", err)
	}
	if n := shutdown.Load(); n != DefaultQueueSize+1 {
		t.Errorf("%d shutdown completions for A, want %d", n, DefaultQueueSize+1)
	}
	if n := other.Load(); n != 0 {
		t.Errorf("%d unexpected replies for A", n)
	}
}

// TestMaxInFlight: beyond the global cap, invocations fail at once instead of piling up
// behind a stalled upstream, and connection events wait for a slot.
func TestMaxInFlight(t *testing.T) {
	stalled := make(chan struct{}, 1)
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-ASRS-Connection-Id") == "A" {
			stalled <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), MaxInFlight: 1})
	ra := newReplies(protocol.JSON())
	u.Open(ConnInfo{ID: "A", Hub: "chat", Protocol: protocol.JSON()}, ra.fn).Invoke(&protocol.Invocation{InvocationID: "1", Target: "slow"})
	select {
	case <-stalled:
	case <-time.After(waitFor):
		t.Fatal("A's invocation never reached the upstream")
	}
	rb := newReplies(protocol.JSON())
	b := u.Open(ConnInfo{ID: "B", Hub: "chat", Protocol: protocol.JSON()}, rb.fn)
	b.Invoke(&protocol.Invocation{InvocationID: "2", Target: "x"})
	if c := rb.next(t); !strings.HasPrefix(c.Error, ErrTextOverloaded) || c.InvocationID != "2" {
		t.Errorf("over the cap: %+v", c)
	}
	b.Connected() // waits for the slot, then goes through
	if st := u.Stats(); st.Overloaded != 1 || st.InFlight != 1 {
		t.Errorf("stats %+v", st)
	}
	close(release)
	if c := ra.next(t); c.Error != "" {
		t.Errorf("A: %+v", c)
	}
	if ev := f.next(t).Header.Get("X-ASRS-Event"); ev != "slow" {
		t.Errorf("first request %q", ev)
	}
	if got := f.next(t); got.Header.Get("X-ASRS-Event") != "connected" || got.Header.Get("X-ASRS-Connection-Id") != "B" {
		t.Errorf("B's connected event did not go out after the slot freed: %v", got.Header)
	}
}

// TestManySessionsConcurrently shakes the session machinery under -race: every invocation
// with an id gets exactly one reply, and each connection's upstream sees connected first
// and disconnected last.
func TestManySessionsConcurrently(t *testing.T) {
	const sessions, invokes = 16, 15
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-ASRS-Event") == "fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	for _, par := range []int{1, 3} {
		u, err := New(Options{Rules: ParseRules([]string{f.srv.URL}), Parallelism: par, QueueSize: invokes})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		replies := make([]atomic.Int64, sessions)
		for i := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := u.Open(ConnInfo{ID: "p" + strconv.Itoa(par) + "-" + strconv.Itoa(i), Hub: "chat", Protocol: protocol.JSON()},
					func([]byte) { replies[i].Add(1) })
				s.Connected()
				for j := range invokes {
					target := "ok"
					if j%5 == 0 {
						target = "fail"
					}
					id := ""
					if j%2 == 0 {
						id = strconv.Itoa(j)
					}
					s.Invoke(&protocol.Invocation{InvocationID: id, Target: target})
				}
				s.Disconnected("")
			}()
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := u.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		cancel()
		for i := range sessions {
			if n := replies[i].Load(); n != (invokes+1)/2 {
				t.Errorf("session %d: %d replies, want %d", i, n, (invokes+1)/2)
			}
		}
		if st := u.Stats(); st.BusySessions != 0 || st.InFlight != 0 || st.QueueFull != 0 {
			t.Errorf("stats after close %+v", st)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string][]string{}
	for _, r := range f.all {
		id := r.Header.Get("X-ASRS-Connection-Id")
		seen[id] = append(seen[id], r.Header.Get("X-ASRS-Event"))
	}
	if len(seen) != 2*sessions {
		t.Fatalf("%d connections seen, want %d", len(seen), 2*sessions)
	}
	for id, evs := range seen {
		if len(evs) != invokes+2 || evs[0] != "connected" || evs[len(evs)-1] != "disconnected" {
			t.Errorf("%s: events %v", id, evs)
		}
	}
}
