package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

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
func BenchmarkInvokeOverloaded(b *testing.B) {
	release := make(chan struct{})
	u := benchUpstream(b, func(w http.ResponseWriter, r *http.Request) { <-release }, Options{MaxInFlightPerEvent: 1})
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
