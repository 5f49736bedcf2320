package transport

import (
	"runtime"
	"testing"
	"time"
)

// A parked reader handed a connection stops counting as parked at once, not when it
// gets to run: on a busy server it waits for a CPU meanwhile, and readers finishing
// in that time found the count full, ended, and left the next dispatches to start
// fresh goroutines (thousands a second under the S2 overload load, each growing its
// stack again).
func TestDispatchCountsTheHandedReaderOffAtOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // the handed reader cannot run before the check
	p := &EventLoop{work: make(chan *WebSocket)}
	idle := func() *WebSocket { // a reader run that returns at once
		ws := &WebSocket{}
		ws.closed.Store(true)
		ws.sched.Store(schedRunning)
		return ws
	}
	go p.reader(idle(), p.work)
	deadline := time.Now().Add(5 * time.Second)
	for p.parked.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the reader did not park")
		}
		runtime.Gosched()
	}
	runtime.Gosched() // from the count to the receive, it does not yield
	p.dispatch(idle())
	if n := p.parked.Load(); n != 0 {
		t.Fatalf("%d readers count as parked right after the only one was handed a connection", n)
	}
	close(p.work) // the reader ends
}
