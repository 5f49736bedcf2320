package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/client"
	"github.com/signalbox-io/signalbox/protocol"
)

// Connect to a hub, call a hub method served by the function app upstream, and
// receive a message the app broadcasts through the REST API.
func Example() {
	// An in-process Signalbox whose upstream answers echo(x) with x.
	sb, stop, err := newSignalbox()
	if err != nil {
		panic(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Usually the URL is the app's negotiate base (e.g. http://localhost:7071/api),
	// whose answer redirects to the service; here the token is minted locally.
	conn, err := client.Dial(ctx, auth.ClientURL(sb.endpoint, "chat"), &client.Options{
		AccessToken: func(context.Context) (string, error) {
			return auth.NewToken(testKey, auth.TokenOptions{Audience: auth.ClientAudience(sb.endpoint, "chat"), UserID: "alice"})
		},
		Protocol: protocol.MessagePack(),
	})
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	messages := make(chan string, 1)
	conn.On("newMessage", func(args []protocol.Value) {
		var text string
		if len(args) == 1 && args[0].Decode(&text) == nil {
			messages <- text
		}
	})

	res, err := conn.Invoke(ctx, "echo", map[string]int{"n": 42})
	if err != nil {
		panic(err)
	}
	var echoed map[string]int
	if err := res.Decode(&echoed); err != nil {
		panic(err)
	}
	fmt.Println("echo returned", echoed["n"])

	if err := sb.mgmt.SendToUser(ctx, "chat", "alice", "newMessage", []any{"hello, alice"}, nil); err != nil {
		panic(err)
	}
	fmt.Println("received", <-messages)

	_, err = conn.Invoke(ctx, "fail")
	fmt.Println(err)
	// Output:
	// echo returned 42
	// received hello, alice
	// client: invocation of "fail" failed: it failed
}
