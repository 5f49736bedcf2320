package upstream

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A burst of concurrent calls finds the connections of the previous burst idle in the
// pool: none is closed and dialed again. (The pool kept 64 idle connections, so every
// burst above that closed the rest and redialed them, a tenth of the server's CPU.)
func TestPoolKeepsBurstConnections(t *testing.T) {
	const burst = 100
	var dials atomic.Int64
	var arrived sync.WaitGroup
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release // all calls of a burst in flight at once
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	client := newHTTPClient(1000)
	defer client.CloseIdleConnections()
	for round := 0; round < 2; round++ {
		release = make(chan struct{})
		arrived.Add(burst)
		var done sync.WaitGroup
		for i := 0; i < burst; i++ {
			done.Add(1)
			go func() {
				defer done.Done()
				resp, err := client.Post(srv.URL, "application/json", nil)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		waitDone := make(chan struct{})
		go func() { arrived.Wait(); close(waitDone) }()
		select {
		case <-waitDone:
		case <-time.After(10 * time.Second):
			t.Fatal("the burst did not arrive")
		}
		close(release)
		done.Wait()
	}
	if got := dials.Load(); got != burst {
		t.Fatalf("two bursts of %d calls opened %d connections, want %d", burst, got, burst)
	}
}
