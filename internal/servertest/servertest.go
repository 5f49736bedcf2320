// Package servertest serves a Signalbox server inside a test's process on a loopback
// port, for the tests that drive one from outside (the CLI, the bench's clients), as
// net/http/httptest does for a handler.
package servertest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/server"
)

// Start serves a server made with cfg on a free loopback port (cfg.Listen is
// replaced) until the test ends, then shuts it down and fails the test if Serve
// failed. It returns the server's endpoint, http://127.0.0.1:PORT.
func Start(tb testing.TB, cfg server.Config) string {
	tb.Helper()
	cfg.Listen = "127.0.0.1:0"
	srv, err := server.New(cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
