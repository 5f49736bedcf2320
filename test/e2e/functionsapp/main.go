// Command functionsapp is the function app of the functions-*.test.js end-to-end tests: a Go
// program that uses only the public binding packages (functions, connection, management) the
// way a user's app would, and exposes each binding over small HTTP endpoints so that the
// JavaScript tests can drive them and check what real SignalR clients observe.
//
// Environment:
//
//	AzureSignalRConnectionString or Azure__SignalR__Endpoints__*   the service endpoints
//	FUNCTIONS_CUSTOMHANDLER_PORT   port on 127.0.0.1 (default 7071)
//	AzureSignalRHealthCheck__*     endpoint health checks (see management.OptionsFromSettings)
//
// Endpoints (hub "chat"):
//
//	POST /api/negotiate     signalRConnectionInfo; user id from ?userId= or x-ms-client-principal-id,
//	                        claims name, email, aud of the X-MS-TOKEN-AAD-ID-TOKEN header
//	POST /api/negotiation   signalRNegotiation (connection info for every endpoint)
//	GET  /api/endpoints     signalREndpoints
//	POST /api/send          {kind: all|user|group|connection, target, args, userId, groupName, connectionId}
//	POST /api/group         {action, userId, connectionId, groupName}
//	POST /api/output        a raw signalR output binding value (object or array), as a worker returns it
//	                        (these three: 204 done; 200 {delivered, failed} done on some endpoints;
//	                        422 endpoints name none configured; 502 not done)
//	GET  /api/events        trigger events seen so far (?connectionId= filters)
//	GET  /api/ready         200 once serving
//	/runtime/webhooks/signalr  the trigger: connected (refused with 403 for user ids starting
//	                        with "banned"), disconnected, echo(x), add(a, b), fail()
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/functions"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("functionsapp failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	settings := connection.FromEnviron()
	// functions.New reads the retry, timeout and health-check app settings itself
	// (AzureSignalRHealthCheck__Interval etc.); the tests set them as a user would.
	svc, err := functions.New(settings, &functions.Options{Logger: log})
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := svc.Start(ctx); err != nil {
		return err
	}
	handler, err := newApp(svc, log)
	if err != nil {
		return err
	}

	port, _ := settings.Get("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		port = "7071"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strings.TrimSpace(port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Info("functionsapp listening", "address", ln.Addr().String(), "endpoints", len(svc.Endpoints()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
