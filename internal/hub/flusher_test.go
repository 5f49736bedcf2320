package hub

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// countingFlusher records what the registry flushes through it.
type countingFlusher struct {
	mu      *sync.Mutex
	flushed map[string]int
	done    *atomic.Int32
	pending int
}

func (f *countingFlusher) Flush(c Client) {
	f.mu.Lock()
	f.flushed[c.ID()]++
	f.mu.Unlock()
	f.pending++
	c.(Queuer).Flush()
}

func (f *countingFlusher) Done() {
	if f.pending == 0 {
		panic("Done on a Flusher that flushed nothing")
	}
	f.done.Add(1)
}

// Options.Flusher: every recipient of a fan-out (inline or in the background) is
// flushed once, through a Flusher each flush goroutine got and ended with Done; a
// fan-out to fewer than minGathered recipients flushes directly.
func TestFanOutFlushesThroughTheFlusher(t *testing.T) {
	var mu sync.Mutex
	flushed := map[string]int{}
	var made, done atomic.Int32
	r := NewWithOptions(Options{Flusher: func() Flusher {
		made.Add(1)
		return &countingFlusher{mu: &mu, flushed: flushed, done: &done}
	}})
	const n = 3 * flushMinPerWorker // several flush goroutines
	clients := make([]*queueClient, n)
	for i := range clients {
		clients[i] = &queueClient{benchClient: benchClient{id: fmt.Sprint("c", i), proto: protocol.JSON()}}
		r.Add(clients[i])
	}
	check := func(what string, want int64) {
		t.Helper()
		for i, c := range clients {
			if got := c.flushed.Load(); got != want {
				t.Fatalf("%s: client %d flushed %d times, want %d", what, i, got, want)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for id, k := range flushed {
			if int64(k) != want {
				t.Fatalf("%s: %s went through the Flusher %d times, want %d", what, id, k, want)
			}
		}
		if made.Load() == 0 || made.Load() != done.Load() {
			t.Fatalf("%s: %d Flushers made, %d done", what, made.Load(), done.Load())
		}
	}
	r.SendAll("bench", msg("inline"), nil)
	check("inline", 1)

	finished := make(chan struct{})
	bg := NewBackground(func() { close(finished) })
	p := msg("background")
	p.FlushInBackground(bg)
	r.SendAll("bench", p, nil)
	bg.Close()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("the background fan-out did not finish")
	}
	check("background", 2)

	// A small fan-out: no Flusher.
	before := made.Load()
	small := New(nil)
	small.newFlusher = r.newFlusher
	few := make([]*queueClient, minGathered-1)
	for i := range few {
		few[i] = &queueClient{benchClient: benchClient{id: fmt.Sprint("f", i), proto: protocol.JSON()}}
		small.Add(few[i])
	}
	small.SendAll("bench", msg("few"), nil)
	for i, c := range few {
		if c.flushed.Load() != 1 {
			t.Fatalf("small fan-out: client %d flushed %d times", i, c.flushed.Load())
		}
	}
	if made.Load() != before {
		t.Fatalf("a fan-out to %d recipients asked for a Flusher", len(few))
	}
}
