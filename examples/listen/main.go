// Command listen connects one SignalR client to a hub and prints every message the
// service sends it, one line each: target(arguments as JSON). It is the smallest way to
// watch a REST broadcast arrive:
//
//	go run ./examples/listen -connection-string "Endpoint=http://localhost:8888;AccessKey=...;Version=1.0;" -hub chat
//
// The connection string is the one `signalbox serve` prints; AzureSignalRConnectionString
// in the environment works too. The token is minted locally with the access key, exactly
// as a negotiate function would.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/client"
	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/protocol"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
}

func run() error {
	cs := flag.String("connection-string", os.Getenv("AzureSignalRConnectionString"), "service connection string (Endpoint=...;AccessKey=...;Version=1.0;)")
	hubName := flag.String("hub", "chat", "hub to join")
	user := flag.String("user", "", "user id to put in the token (optional)")
	msgpack := flag.Bool("messagepack", false, "use the MessagePack hub protocol instead of JSON")
	flag.Parse()
	if *cs == "" {
		return fmt.Errorf("-connection-string (or AzureSignalRConnectionString) is required")
	}
	parsed, err := connection.ParseConnectionString(*cs)
	if err != nil {
		return fmt.Errorf("connection string: %w", err)
	}
	if parsed.AccessKey == "" {
		return fmt.Errorf("connection string: this example needs an AccessKey")
	}
	clientEndpoint := parsed.Endpoint
	if parsed.ClientEndpoint != "" {
		clientEndpoint = parsed.ClientEndpoint
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := &client.Options{
		AccessToken: func(context.Context) (string, error) {
			return auth.NewToken(parsed.AccessKey, auth.TokenOptions{
				Audience: auth.ClientAudience(parsed.Endpoint, *hubName),
				UserID:   *user,
			})
		},
		Protocol: protocol.JSON(),
	}
	if *msgpack {
		opts.Protocol = protocol.MessagePack()
	}
	conn, err := client.Dial(ctx, auth.ClientURL(clientEndpoint, *hubName), opts)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	fmt.Fprintf(os.Stderr, "connected to hub %q as connection %s; waiting for messages (Ctrl-C to stop)\n", *hubName, conn.ID())

	msgs := conn.Messages()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-conn.Done():
			if err := conn.Err(); err != nil {
				return fmt.Errorf("connection ended: %w", err)
			}
			return nil
		case m, ok := <-msgs:
			if !ok {
				msgs = nil // the connection is ending; Done says how
				continue
			}
			fmt.Println(format(m))
		}
	}
}

// format renders an invocation as target(arg1, arg2) with each argument as JSON.
func format(m *protocol.Invocation) string {
	args := make([]string, len(m.Arguments))
	for i, a := range m.Arguments {
		b, err := a.JSON()
		if err != nil {
			b, _ = json.Marshal(err.Error())
		}
		args[i] = string(b)
	}
	return m.Target + "(" + strings.Join(args, ", ") + ")"
}
