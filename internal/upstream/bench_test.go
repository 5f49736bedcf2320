package upstream

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// BenchmarkInvokeRoundTrip measures one invocation through a real loopback upstream that
// answers with a framed Completion, as the Functions extension does.
func BenchmarkInvokeRoundTrip(b *testing.B) {
	u := benchUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("{\"type\":3,\"invocationId\":\"1\",\"result\":\"pong\"}\x1e"))
	}, Options{})
	benchInvokes(b, u)
}

// BenchmarkInvokeOverloaded measures an invocation refused because its event's calls in
// flight are at their limit: under overload, refusals must cost a small fraction of a
// call, or they take the CPU the admitted calls need.
func BenchmarkInvokeOverloaded(b *testing.B) { benchRefusals(b, Options{MaxInFlightPerEvent: 1}) }

// benchRefusals times invocations refused because the one call opts allow their
// event is held.
func benchRefusals(b *testing.B, opts Options) {
	release := make(chan struct{})
	u := benchUpstream(b, func(w http.ResponseWriter, r *http.Request) { <-release }, opts)
	b.Cleanup(func() { close(release) }) // runs before benchUpstream's cleanups
	u.Open(ConnInfo{ID: "held", Hub: "chat", Protocol: protocol.JSON()}, func([]byte) {}).
		Invoke(&protocol.Invocation{InvocationID: "0", Target: "ping"})
	for u.Stats().InFlight == 0 {
		runtime.Gosched()
	}
	benchInvokes(b, u)
	if u.Stats().Overloaded == 0 {
		b.Fatal("no invocation was refused")
	}
}

// benchUpstream is an Upstream (closed at cleanup) whose every rule is a loopback server
// answering with handle.
func benchUpstream(b *testing.B, handle http.HandlerFunc, opts Options) *Upstream {
	srv := httptest.NewServer(handle)
	b.Cleanup(srv.Close)
	opts.Rules = ParseRules([]string{srv.URL + "/runtime/webhooks/signalr?code=k"})
	opts.AccessKeys = []string{"key"}
	u, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = u.Close(context.Background()) })
	return u
}

// benchInvokes times invocations of one session, each awaited.
func benchInvokes(b *testing.B, u *Upstream) {
	done := make(chan []byte, 1)
	s := u.Open(ConnInfo{ID: "bench", Hub: "chat", Protocol: protocol.JSON()}, func(f []byte) { done <- f })
	arg, _ := protocol.ValueOf("ping")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Invoke(&protocol.Invocation{InvocationID: strconv.Itoa(i), Target: "ping", Arguments: []protocol.Value{arg}})
		<-done
	}
}

// BenchmarkBurstyArrivals offers bursts of invocations (every 10 ms, from 400
// sessions) to one event limited to 10 calls in flight, whose function app answers
// after 5 ms (a sleep, not CPU): 2,000 calls/s at most. 20 per burst is 1x, 40 is 2x.
// It reports the calls served and refused per second, without and with a wait for a
// slot (Options.SlotWait): refused at once, a burst beyond the limit is refused
// although the slots free within 5 ms. Run with -benchtime 1x (each run is 1 s).
func BenchmarkBurstyArrivals(b *testing.B) {
	f := newFake(b, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		_, _ = w.Write([]byte(`{"type":3,"invocationId":"x","result":1}` + "\x1e"))
	})
	for _, burst := range []int{20, 40} {
		for _, wait := range []time.Duration{-1, 50 * time.Millisecond} {
			name := fmt.Sprintf("burst=%d/wait=%v", burst, max(wait, 0))
			b.Run(name, func(b *testing.B) {
				u := newUpstream(b, Options{Rules: ParseRules([]string{f.srv.URL}), MaxInFlightPerEvent: 10, SlotWait: wait})
				var served, refused atomic.Int64
				var wg sync.WaitGroup
				sessions := make([]*Session, 400)
				for i := range sessions {
					sessions[i] = u.Open(ConnInfo{ID: strconv.Itoa(i), Hub: "chat", Protocol: protocol.JSON()}, func(frame []byte) {
						if c := decodeCompletion(b, protocol.JSON(), frame); c.Error == "" {
							served.Add(1)
						} else {
							refused.Add(1)
						}
						wg.Done()
					})
				}
				inv := &protocol.Invocation{InvocationID: "1", Target: "echo"}
				start := time.Now()
				for range b.N {
					for round := range 100 {
						for k := range burst {
							wg.Add(1)
							sessions[(round*burst+k)%len(sessions)].Invoke(inv)
						}
						time.Sleep(time.Until(start.Add(time.Duration(round+1) * 10 * time.Millisecond)))
					}
					start = start.Add(time.Second)
				}
				wg.Wait()
				s := time.Since(start.Add(-time.Duration(b.N) * time.Second)).Seconds()
				b.ReportMetric(float64(served.Load())/s, "served/s")
				b.ReportMetric(float64(refused.Load())/s, "refused/s")
			})
		}
	}
}

// BenchmarkInvokeRefusedAtOnce measures an invocation refused inside Invoke (its event
// at its limit, no wait for a slot): the refusal of the S2 overload row.
func BenchmarkInvokeRefusedAtOnce(b *testing.B) {
	benchRefusals(b, Options{MaxInFlightPerEvent: 1, SlotWait: -1})
}
