package upstream_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/signalbox-io/signalbox/internal/upstream"
	"github.com/signalbox-io/signalbox/protocol"
)

// The server opens a session per connection after the handshake, forwards the client's
// invocations, and relays what the function app answers through the reply callback.
func Example() {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-ASRS-Category") == "messages" {
			// The Functions extension answers with a framed Completion in the client's protocol.
			_, _ = w.Write([]byte("{\"type\":3,\"invocationId\":\"1\",\"result\":\"pong\"}\x1e"))
		}
	}))
	defer fn.Close()

	up, err := upstream.New(upstream.Options{
		Rules:      upstream.ParseRules([]string{fn.URL + "/runtime/webhooks/signalr?code=KEY"}),
		AccessKeys: []string{"access-key"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	frames := make(chan []byte, 1)
	s := up.Open(upstream.ConnInfo{ID: "conn-1", Hub: "chat", Protocol: protocol.JSON()},
		func(frame []byte) { frames <- frame })
	s.Connected()
	s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "ping"})
	fmt.Printf("%q\n", <-frames)
	s.Disconnected("")
	if err := up.Close(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: "{\"type\":3,\"invocationId\":\"1\",\"result\":\"pong\"}\x1e"
}

// A template that cannot give an absolute http(s) URL stops the service at start-up.
func ExampleNew_badTemplate() {
	_, err := upstream.New(upstream.Options{
		Rules: upstream.ParseRules([]string{"localhost:7071/runtime/webhooks/signalr"}),
	})
	fmt.Println(err)
	// Output: upstream rule 1: URL template "localhost:7071/runtime/webhooks/signalr" must be an absolute http:// or https:// URL
}

// Rules are tried in order: here the "admin" hub has its own function app and every other
// hub goes to the default one.
func ExampleRule() {
	_, err := upstream.New(upstream.Options{Rules: []upstream.Rule{
		{URLTemplate: "https://admin-fn.example/runtime/webhooks/signalr", HubPattern: "admin"},
		{URLTemplate: "https://fn.example/api/{hub}/{category}/{event}", HubPattern: "*"},
	}})
	fmt.Println(err)
	// Output: <nil>
}
