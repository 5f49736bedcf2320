package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/client"
	"github.com/signalbox-io/signalbox/management"
	"github.com/signalbox-io/signalbox/protocol"
)

type variant struct {
	name      string
	transport client.Transport
	proto     protocol.Protocol
}

var variants = []variant{
	{"ws-json", client.WebSockets, protocol.JSON()},
	{"ws-messagepack", client.WebSockets, protocol.MessagePack()},
	{"sse-json", client.ServerSentEvents, protocol.JSON()},
	{"lp-json", client.LongPolling, protocol.JSON()},
	{"lp-messagepack", client.LongPolling, protocol.MessagePack()},
}

func TestInvokeSendAndReceive(t *testing.T) {
	sb := startSignalbox(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ctx := testContext(t)
			c, err := client.Dial(ctx, sb.hubURL("chat"), &client.Options{
				AccessToken: sb.tokenFor("chat", "u1"), Transport: v.transport, Protocol: v.proto,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.ID() == "" || c.Protocol().Name() != v.proto.Name() {
				t.Fatalf("ID %q protocol %q", c.ID(), c.Protocol().Name())
			}

			// Invoke: the upstream echoes the argument; the Completion carries it.
			res, err := c.Invoke(ctx, "echo", map[string]any{"a": 1, "b": "x"})
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := res.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got["a"] != float64(1) || got["b"] != "x" {
				t.Fatalf("echo returned %v", got)
			}

			// A failing hub method is an *InvocationError.
			_, err = c.Invoke(ctx, "fail")
			var ie *client.InvocationError
			if !errors.As(err, &ie) || ie.Target != "fail" || ie.Message == "" {
				t.Fatalf("Invoke(fail) = %v, want an InvocationError", err)
			}

			// Server-to-client: a REST broadcast reaches the handler (the echo
			// round trip above made sure the connection is registered).
			got2 := make(chan string, 1)
			c.On("newMessage", func(args []protocol.Value) {
				var s string
				if len(args) == 1 && args[0].Decode(&s) == nil {
					got2 <- s
				}
			})
			if err := sb.mgmt.SendToAll(ctx, "chat", "NEWMESSAGE", []any{"hello " + v.name}, nil); err != nil {
				t.Fatal(err)
			}
			select {
			case s := <-got2:
				if s != "hello "+v.name {
					t.Fatalf("handler got %q", s)
				}
			case <-ctx.Done():
				t.Fatal("no broadcast received")
			}

			// Send (no invocation id) is accepted without an answer.
			if err := c.Send(ctx, "echo", 1); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if c.Err() != nil {
				t.Fatalf("Err after Close = %v", c.Err())
			}
			if err := c.Send(ctx, "echo", 1); !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Send after Close = %v", err)
			}
			if _, err := c.Invoke(ctx, "echo", 1); !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Invoke after Close = %v", err)
			}
		})
	}
}

func TestMessagesChannel(t *testing.T) {
	sb := startSignalbox(t)
	ctx := testContext(t)
	c, err := client.Dial(ctx, sb.hubURL("chat"), &client.Options{AccessToken: sb.tokenFor("chat", "u2")})
	if err != nil {
		t.Fatal(err)
	}
	msgs := c.Messages()
	registered(t, c)
	if err := sb.mgmt.SendToUser(ctx, "chat", "u2", "notify", []any{42, "x"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case inv := <-msgs:
		if inv.Target != "notify" || len(inv.Arguments) != 2 {
			t.Fatalf("got %+v", inv)
		}
		var n int
		if err := inv.Arguments[0].Decode(&n); err != nil || n != 42 {
			t.Fatalf("argument 0 = %d, %v", n, err)
		}
	case <-ctx.Done():
		t.Fatal("no message")
	}
	c.Close()
	select {
	case _, ok := <-msgs:
		if ok {
			t.Fatal("unexpected message after Close")
		}
	case <-ctx.Done():
		t.Fatal("Messages not closed after Close")
	}
}

func TestServerClose(t *testing.T) {
	sb := startSignalbox(t)
	ctx := testContext(t)
	c, err := client.Dial(ctx, sb.hubURL("chat"), &client.Options{AccessToken: sb.tokenFor("chat", "u3")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	registered(t, c)
	if err := sb.mgmt.CloseConnection(ctx, "chat", c.ID(), &management.CloseOptions{Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("connection not ended by the server's close")
	}
	var ce *client.CloseError
	if err := c.Err(); !errors.As(err, &ce) || !strings.Contains(ce.Message, "bye") {
		t.Fatalf("Err = %v, want a CloseError with the reason", err)
	}
	if _, err := c.Invoke(ctx, "echo", 1); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Invoke = %v", err)
	}
}

func TestServerTimeout(t *testing.T) {
	sb := startSignalbox(t)
	ctx := testContext(t)
	// The server pings every 15 s: a 200 ms server timeout must end the connection.
	c, err := client.Dial(ctx, sb.hubURL("chat"), &client.Options{
		AccessToken: sb.tokenFor("chat", "u4"), ServerTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("no server timeout")
	}
	if !errors.Is(c.Err(), client.ErrServerTimeout) {
		t.Fatalf("Err = %v", c.Err())
	}
}

func TestKeepAlivePingsKeepTheConnection(t *testing.T) {
	sb := startSignalbox(t)
	ctx := testContext(t)
	c, err := client.Dial(ctx, sb.hubURL("chat"), &client.Options{
		AccessToken: sb.tokenFor("chat", "u5"), KeepAliveInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Several ping intervals later the connection still works.
	timer := time.NewTimer(150 * time.Millisecond)
	defer timer.Stop()
	select {
	case <-c.Done():
		t.Fatalf("ended: %v", c.Err())
	case <-timer.C:
	}
	if _, err := c.Invoke(ctx, "echo", "still here"); err != nil {
		t.Fatal(err)
	}
}

func TestNegotiateRedirect(t *testing.T) {
	sb := startSignalbox(t)
	var calls atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/api/negotiate" || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer app-token" {
			http.Error(w, "bad request "+r.URL.Path, http.StatusBadRequest)
			return
		}
		tok, _ := sb.tokenFor("chat", "redirected")(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"url": sb.hubURL("chat"), "accessToken": tok})
	}))
	defer app.Close()
	ctx := testContext(t)
	c, err := client.Dial(ctx, app.URL+"/api", &client.Options{
		AccessToken: func(context.Context) (string, error) { return "app-token", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if calls.Load() != 1 {
		t.Fatalf("app negotiate called %d times", calls.Load())
	}
	// A round trip first: the server registers the connection after its handshake answer.
	if _, err := c.Invoke(ctx, "echo", 1); err != nil {
		t.Fatal(err)
	}
	exists, err := sb.mgmt.UserExists(ctx, "chat", "redirected", nil)
	if err != nil || !exists {
		t.Fatalf("user of the redirect token not connected: %v %v", exists, err)
	}
}

func TestNegotiateRedirectLoop(t *testing.T) {
	var calls atomic.Int32
	var app *httptest.Server
	app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"url": app.URL + "/again", "accessToken": "t"})
	}))
	defer app.Close()
	_, err := client.Dial(testContext(t), app.URL, nil)
	if err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("err = %v", err)
	}
	if n := calls.Load(); n != 101 {
		t.Fatalf("%d negotiate calls, want 101", n)
	}
}

func TestDialErrors(t *testing.T) {
	sb := startSignalbox(t)
	ctx := testContext(t)
	neg := func(body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	tests := []struct {
		name, url string
		opts      *client.Options
		want      string
	}{
		{"no token", sb.hubURL("chat"), nil, "HTTP 401"},
		{"wrong hub token", sb.hubURL("chat"), &client.Options{AccessToken: sb.tokenFor("other", "u")}, "HTTP 401"},
		{"token error", sb.hubURL("chat"), &client.Options{AccessToken: func(context.Context) (string, error) { return "", errors.New("no token today") }}, "no token today"},
		{"server error", neg(`{"error":"go away"}`), nil, "go away"},
		{"garbage", neg(`<html>`), nil, "invalid response"},
		{"empty", neg(`{}`), nil, "neither url nor connectionId"},
		{"no websockets", neg(`{"connectionId":"a","availableTransports":[{"transport":"LongPolling","transferFormats":["Text"]}]}`), nil, "does not offer WebSockets"},
		{"bad scheme", "ftp://x", nil, "scheme"},
		{"sse binary", sb.hubURL("chat"), &client.Options{Transport: client.ServerSentEvents, Protocol: protocol.MessagePack()}, "text only"},
		{"unknown transport", sb.hubURL("chat"), &client.Options{Transport: 7}, "unknown transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.Dial(ctx, tt.url, tt.opts)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	var he *client.HTTPError
	if _, err := client.Dial(ctx, sb.hubURL("chat"), nil); !errors.As(err, &he) || he.StatusCode != 401 || he.Op != "negotiate" {
		t.Fatalf("err = %v, want an HTTPError 401", err)
	}
}

func TestSkipNegotiation(t *testing.T) {
	sb := startSignalbox(t)
	ctx := testContext(t)
	c, err := client.Dial(ctx, sb.hubURL("chat"), &client.Options{AccessToken: sb.tokenFor("chat", "u6"), SkipNegotiation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Invoke(ctx, "echo", true); err != nil {
		t.Fatal(err)
	}
}

func TestInvokeContextCanceled(t *testing.T) {
	sb := startSignalbox(t)
	ctx := testContext(t)
	c, err := client.Dial(ctx, sb.hubURL("chat"), &client.Options{AccessToken: sb.tokenFor("chat", "u7")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Invoke(cctx, "echo", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}

	// Sends whose contexts end at any moment never break the connection.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, time.Duration(i)*time.Microsecond)
			defer cancel()
			_ = c.Send(sctx, "echo", strings.Repeat("x", 4096))
		}()
	}
	wg.Wait()
	if _, err := c.Invoke(ctx, "echo", 2); err != nil {
		t.Fatalf("connection broken by cancelled sends: %v", err)
	}
}

// registered waits until the server has registered c: it answers an invocation only
// after that (Dial returns at the handshake answer, which comes first).
func registered(t *testing.T, c *client.Conn) {
	t.Helper()
	if _, err := c.Invoke(testContext(t), "echo", 0); err != nil {
		t.Fatal(err)
	}
}
