package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/signalbox-io/signalbox/client"
)

// fakeService answers negotiate and runs serve on each accepted WebSocket.
func fakeService(t *testing.T, serve func(ctx context.Context, ws *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/negotiate") {
			_ = json.NewEncoder(w).Encode(map[string]any{
				"negotiateVersion": 1, "connectionId": "c1", "connectionToken": "t1",
				"availableTransports": []any{map[string]any{"transport": "WebSockets", "transferFormats": []string{"Text", "Binary"}}},
			})
			return
		}
		if r.URL.Query().Get("id") != "t1" {
			http.Error(w, "bad id", http.StatusNotFound)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		serve(r.Context(), ws)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hub"
}

func TestHandshakeTimeout(t *testing.T) {
	url := fakeService(t, func(ctx context.Context, ws *websocket.Conn) {
		_, _, _ = ws.Read(ctx) // the handshake request; no answer
		_, _, _ = ws.Read(ctx) // until the client gives up
	})
	start := time.Now()
	_, err := client.Dial(testContext(t), url, &client.Options{HandshakeTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "handshake") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("gave up after %v", time.Since(start))
	}
}

func TestHandshakeRejected(t *testing.T) {
	url := fakeService(t, func(ctx context.Context, ws *websocket.Conn) {
		_, _, _ = ws.Read(ctx)
		_ = ws.Write(ctx, websocket.MessageText, []byte("{\"error\":\"Requested protocol 'json' is not available.\"}\x1e"))
		_, _, _ = ws.Read(ctx)
	})
	_, err := client.Dial(testContext(t), url, nil)
	if err == nil || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("err = %v", err)
	}
}

func TestMalformedServerMessageEndsConnection(t *testing.T) {
	url := fakeService(t, func(ctx context.Context, ws *websocket.Conn) {
		_, _, _ = ws.Read(ctx)
		// The handshake answer and, in the same frame, a message that is not JSON.
		_ = ws.Write(ctx, websocket.MessageText, []byte("{}\x1e{nope\x1e"))
		_, _, _ = ws.Read(ctx)
	})
	ctx := testContext(t)
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("connection survived a malformed message")
	}
	if c.Err() == nil {
		t.Fatal("no error recorded")
	}
}

func TestCloseFailsPendingInvoke(t *testing.T) {
	received := make(chan struct{})
	url := fakeService(t, func(ctx context.Context, ws *websocket.Conn) {
		_, _, _ = ws.Read(ctx)
		_ = ws.Write(ctx, websocket.MessageText, []byte("{}\x1e"))
		_, _, _ = ws.Read(ctx) // the invocation, never answered
		close(received)
		_, _, _ = ws.Read(ctx)
	})
	ctx := testContext(t)
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Invoke(ctx, "slow")
		errc <- err
	}()
	select {
	case <-received:
	case <-ctx.Done():
		t.Fatal("invocation not received")
	}
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, client.ErrClosed) {
			t.Fatalf("Invoke = %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Invoke still pending after Close")
	}
}
