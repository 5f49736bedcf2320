package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
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

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// The loop waits in the runtime's poller (its epoll descriptor registered there): it
// must still see every frame, end when its last connection closes (closing the epoll
// descriptor and its pipe), and start again with the next connection, several times
// over.
func TestEventLoopRestartsAndReleasesItsDescriptors(t *testing.T) {
	var loop EventLoop
	ev := &events{data: make(chan string, 16), closed: make(chan error, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := loop.Accept(w, r, ev)
		if err != nil {
			t.Error(err)
			return
		}
		ws.Start()
	}))
	defer srv.Close()
	srv.Client().CloseIdleConnections()
	var before int
	for round := range 3 {
		nc := upgrade(t, srv.URL)
		// Frames sent one by one, each after the previous arrived: every one is a
		// wait in the poller and a wake-up.
		for _, s := range []string{"a", "b", "c"} {
			if _, err := nc.Write([]byte{0x81, 0x81, 0, 0, 0, 0, s[0]}); err != nil {
				t.Fatal(err)
			}
			select {
			case d := <-ev.data:
				if d != s {
					t.Fatalf("round %d: data %q, want %q", round, d, s)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: frame %q not delivered", round, s)
			}
		}
		if round == 0 {
			// Counted once frames came through the loop, so that its descriptors
			// exist: the handler starts it after the 101 the client returns on, and
			// a count right after upgrade could come first (a CI run under -race
			// counted 13, then 11 after the loop had ended).
			before = openFDs(t)
		}
		_ = nc.Close()
		select {
		case <-ev.closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the close was not noticed", round)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := loop.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// With the loop ended: its epoll descriptor and pipe (3), the client's and
		// the server's sockets (2) are gone.
		if now := openFDs(t); now > before-5 {
			t.Fatalf("round %d: %d descriptors open after the loop ended, %d with it running", round, now, before)
		}
	}
}
