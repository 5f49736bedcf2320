package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/signalbox-io/signalbox/protocol"
)

// BenchmarkInvokeRoundTrip measures one invocation through a real loopback upstream that
// answers with a framed Completion, as the Functions extension does.
func BenchmarkInvokeRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("{\"type\":3,\"invocationId\":\"1\",\"result\":\"pong\"}\x1e"))
	}))
	defer srv.Close()
	u, err := New(Options{Rules: ParseRules([]string{srv.URL + "/runtime/webhooks/signalr?code=k"}), AccessKeys: []string{"key"}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = u.Close(context.Background()) }()
	done := make(chan []byte, 1)
	s := u.Open(ConnInfo{ID: "bench", Hub: "chat", Protocol: protocol.JSON()}, func(f []byte) { done <- f })
	arg, _ := protocol.ValueOf("ping")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Invoke(&protocol.Invocation{InvocationID: strconv.Itoa(i), Target: "ping", Arguments: []protocol.Value{arg}})
		<-done
	}
}
