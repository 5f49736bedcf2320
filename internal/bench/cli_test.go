package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/client"
	"github.com/signalbox-io/signalbox/internal/server"
	"github.com/signalbox-io/signalbox/protocol"
)

// TestSendCommand drives `signalbox send` (internal/server/cli_bench.go, which
// belongs with the bench) against an in-process server and a connected client.
func TestSendCommand(t *testing.T) {
	const key = "send-command-test-key-0123456789abcdef"
	cfg := server.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.AccessKeys = server.StringList{key}
	srv, err := server.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	endpoint := "http://" + ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, auth.ClientURL(endpoint, "chat"), &client.Options{
		AccessToken: func(context.Context) (string, error) {
			return auth.NewToken(key, auth.TokenOptions{Audience: auth.ClientAudience(endpoint, "chat"), UserID: "ann"})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := c.Messages()

	run := func(args ...string) (int, string) {
		var stderr bytes.Buffer
		code := server.CLI{Stderr: &stderr}.Run(ctx, append([]string{"send"}, args...))
		return code, stderr.String()
	}
	// Dial returns at the handshake answer; the connection is registered just after,
	// so the first send to the user may miss it: send until one arrives.
	var inv *protocol.Invocation
	for inv == nil {
		if code, out := run("--endpoint", endpoint, "--access-key", key, "--hub", "chat", "--target", "newMessage",
			"--user", "ann", "hello", "42", `{"a":[1]}`); code != 0 {
			t.Fatalf("send: exit %d: %s", code, out)
		}
		select {
		case inv = <-msgs:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no message")
		}
	}
	var got []any
	for _, a := range inv.Arguments {
		var v any
		if err := a.Decode(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	b, _ := json.Marshal(got)
	if inv.Target != "newMessage" || string(b) != `["hello",42,{"a":[1]}]` {
		t.Fatalf("received %s %s", inv.Target, b)
	}

	cs := "Endpoint=" + endpoint + ";AccessKey=" + key + ";Version=1.0;"
	if code, out := run("--connection-string", cs, "--hub", "chat", "--target", "t", "--group", "g", "x"); code != 0 {
		t.Fatalf("send to a group: exit %d: %s", code, out)
	}
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--hub", "chat", "--target", "t"}, server.ExitConfig, "--access-key"},
		{[]string{"--access-key", key, "--target", "t"}, server.ExitConfig, "--hub and --target"},
		{[]string{"--access-key", key, "--hub", "chat", "--target", "t", "--user", "u", "--group", "g"}, server.ExitConfig, "at most one"},
		{[]string{"--connection-string", cs, "--access-key", key, "--hub", "chat", "--target", "t"}, server.ExitConfig, "not both"},
		{[]string{"--endpoint", endpoint, "--access-key", "wrong", "--hub", "chat", "--target", "t"}, server.ExitError, "401"},
	} {
		code, out := run(bad.args...)
		if code != bad.code || !strings.Contains(out, bad.want) {
			t.Errorf("send %v: exit %d %q, want %d and %q", bad.args, code, out, bad.code, bad.want)
		}
		if strings.Contains(out, key) {
			t.Errorf("send %v printed the access key", bad.args)
		}
	}
}

func TestBenchCommandFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--clients", "20000"},
		{"--protocol", "xml"},
		{"--transport", "sse", "--protocol", "messagepack"},
		{"extra"},
	} {
		var stderr bytes.Buffer
		if code := (server.CLI{Stderr: &stderr}).Run(context.Background(), append([]string{"bench"}, args...)); code != server.ExitConfig {
			t.Errorf("bench %v: exit %d (%s)", args, code, stderr.String())
		}
	}
}
