// Command functionapp is a small function app in Go that uses the SignalR Service bindings:
// a negotiate function (signalRConnectionInfo), a chat hub served by the SignalR trigger
// (signalRTrigger) and messages and group actions (signalR output). It runs against Azure
// SignalR Service or Signalbox; see README.md.
//
// Environment:
//
//	AzureSignalRConnectionString   connection string (or any setting form of package connection,
//	                               e.g. Azure__SignalR__Endpoints__{name}, identity settings)
//	FUNCTIONS_CUSTOMHANDLER_PORT   port to listen on, default 7071
//	FUNCTIONS_CUSTOMHANDLER_HOST   interface to listen on, default 127.0.0.1 (use 0.0.0.0 in a
//	                               container; the negotiate function trusts x-ms-client-principal-id)
//	CORS_ALLOWED_ORIGINS           comma-separated origins allowed to negotiate from a browser,
//	                               default "*" (any origin: a development setting)
//	SIGNALR_TRIGGER_CODE           when set, the trigger requires ?code=<value>, like the host's
//	                               signalr_extension key
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
	"github.com/signalbox-io/signalbox/connection/identity"
	"github.com/signalbox-io/signalbox/functions"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, os.Environ(), nil); err != nil {
		log.Error("functionapp failed", "error", err)
		os.Exit(1)
	}
}

// run serves until ctx ends; ready, when set, receives the listening address.
func run(ctx context.Context, log *slog.Logger, environ []string, ready func(addr string)) error {
	settings := connection.FromEnv(environ)
	env := func(k string) string { v, _ := settings.Get(k); return strings.TrimSpace(v) }

	svc, err := functions.New(settings, &functions.Options{NewCredential: identity.NewCredential, Logger: log})
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := svc.Start(ctx); err != nil {
		return err
	}

	o := appOptions{allowedOrigins: []string{"*"}, triggerCode: env("SIGNALR_TRIGGER_CODE")}
	if v := env("CORS_ALLOWED_ORIGINS"); v != "" {
		o.allowedOrigins = nil
		for _, origin := range strings.Split(v, ",") {
			if origin = strings.TrimSpace(origin); origin != "" {
				o.allowedOrigins = append(o.allowedOrigins, origin)
			}
		}
	}
	handler, err := newApp(svc, log, o)
	if err != nil {
		return err
	}

	host, port := env("FUNCTIONS_CUSTOMHANDLER_HOST"), env("FUNCTIONS_CUSTOMHANDLER_PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "7071"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Info("function app listening", "address", ln.Addr().String(),
		"negotiate", "POST /api/negotiate", "trigger", functions.TriggerPath, "hub", hubName)
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
