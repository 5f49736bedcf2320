package upstream

import (
	"testing"
	"testing/synctest"
	"time"
)

// startWaiter starts acquireWithin(key) in a goroutine and returns the channel its result
// arrives on, once the goroutine has taken its place in line (or returned).
func startWaiter(t *testing.T, l *keyedLimit, key string, stop <-chan struct{}, expire <-chan time.Time, lineMax int) <-chan bool {
	t.Helper()
	got := make(chan bool, 1)
	go func() { got <- l.acquireWithin(key, stop, expire, lineMax) }()
	synctest.Wait()
	return got
}

// waiterState is what a waiter's channel holds now: "slot", "refused" or "waiting".
func waiterState(got <-chan bool) string {
	select {
	case ok := <-got:
		if ok {
			return "slot"
		}
		return "refused"
	default:
		return "waiting"
	}
}

func checkEmpty(t *testing.T, l *keyedLimit) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.counts) != 0 || len(l.queues) != 0 {
		t.Fatalf("after every release: counts %v, %d lines", l.counts, len(l.queues))
	}
}

// A released slot goes to the first waiter, then the next, in the order they came;
// a newcomer does not take it in between, and nothing stays behind.
func TestKeyedLimitHandsSlotsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newKeyedLimit(1)
		if !l.tryAcquire("k") {
			t.Fatal("first slot")
		}
		b := startWaiter(t, l, "k", nil, nil, -1)
		c := startWaiter(t, l, "k", nil, nil, -1)
		if waiterState(b) != "waiting" || waiterState(c) != "waiting" {
			t.Fatal("a waiter returned while the slot was taken")
		}
		l.release("k")
		synctest.Wait()
		if l.tryAcquire("k") {
			t.Fatal("a newcomer took the slot handed to a waiter")
		}
		if r := waiterState(b); r != "slot" {
			t.Fatalf("first waiter: %s", r)
		}
		if r := waiterState(c); r != "waiting" {
			t.Fatalf("second waiter: %s before the first released", r)
		}
		l.release("k")
		synctest.Wait()
		if r := waiterState(c); r != "slot" {
			t.Fatalf("second waiter: %s", r)
		}
		if !l.full("k") {
			t.Fatal("the handed slot is not counted")
		}
		l.release("k")
		checkEmpty(t, l)
	})
}

// A waiter whose time is up (or whose stop closes) leaves the line without a slot, and
// the next release does not hand the slot to it: the count goes down.
func TestKeyedLimitWaitEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newKeyedLimit(1)
		l.tryAcquire("k")
		timed := startWaiter(t, l, "k", nil, time.After(50*time.Millisecond), -1)
		stop := make(chan struct{})
		stopped := startWaiter(t, l, "k", stop, nil, -1)
		time.Sleep(50 * time.Millisecond) // the bubble's clock: no real time passes
		synctest.Wait()
		if r := waiterState(timed); r != "refused" {
			t.Fatalf("after its wait: %s", r)
		}
		close(stop)
		synctest.Wait()
		if r := waiterState(stopped); r != "refused" {
			t.Fatalf("after stop: %s", r)
		}
		if l.lineFull("k", 1) {
			t.Fatal("waiters that left are still counted in the line")
		}
		l.release("k")
		checkEmpty(t, l)
	})
}

// The line is bounded: beyond lineMax waiters a caller is refused at once, and
// lineFull says so beforehand; lineFull with 0 is full.
func TestKeyedLimitLineBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newKeyedLimit(2)
		l.tryAcquire("k")
		if l.lineFull("k", 0) {
			t.Fatal("line full with a free slot")
		}
		l.tryAcquire("k")
		if !l.lineFull("k", 0) || l.lineFull("k", 1) {
			t.Fatal("lineFull with no waiter")
		}
		first := startWaiter(t, l, "k", nil, nil, 1)
		if !l.lineFull("k", 1) || l.lineFull("k", 2) {
			t.Fatal("lineFull with one waiter")
		}
		if r := waiterState(startWaiter(t, l, "k", nil, nil, 1)); r != "refused" {
			t.Fatalf("beyond the line: %s", r)
		}
		if l.lineFull("other", 0) {
			t.Fatal("another key is full")
		}
		l.release("k")
		synctest.Wait()
		if r := waiterState(first); r != "slot" {
			t.Fatalf("waiter: %s", r)
		}
		l.release("k")
		l.release("k")
		checkEmpty(t, l)
	})
}
