package upstream

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// Behind a stalled call, one connection's queue holds at most QueueBytes of invocation
// bodies, not QueueSize of the largest messages a client may send (64 MiB by default).
func TestQueuedBytesAreBounded(t *testing.T) {
	stalled := make(chan struct{}, 1)
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-ASRS-Category") == CategoryMessages {
			select {
			case stalled <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL})})
	defer close(release)
	var full atomic.Int64
	s := u.Open(ConnInfo{ID: "A", Hub: "chat", Protocol: protocol.JSON()}, func(frame []byte) {
		if decodeCompletion(t, protocol.JSON(), frame).Error == ErrTextQueueFull {
			full.Add(1)
		}
	})
	big := strArg(t, strings.Repeat("b", 1<<20))
	inv := func(i int) *protocol.Invocation {
		return &protocol.Invocation{InvocationID: strconv.Itoa(i), Target: "t", Arguments: []protocol.Value{big}}
	}
	s.Invoke(inv(0))
	select {
	case <-stalled:
	case <-time.After(waitFor):
		t.Fatal("the first invocation never reached the upstream")
	}
	for i := 1; i <= 32; i++ {
		s.Invoke(inv(i))
	}
	s.mu.Lock()
	queued := 0
	for _, it := range s.queue {
		queued += len(it.body)
	}
	s.mu.Unlock()
	if queued > DefaultQueueBytes+(1<<20)+64 {
		t.Fatalf("%d bytes queued behind a stalled call (%d rejected)", queued, full.Load())
	}
	if full.Load() == 0 {
		t.Fatal("no invocation was rejected")
	}
}
