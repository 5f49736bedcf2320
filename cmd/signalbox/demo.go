package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/demo"
	"github.com/signalbox-io/signalbox/internal/server"
)

// traceTokenLifetime is how long the live-view link that demo prints works.
const traceTokenLifetime = 24 * time.Hour

func (a *app) demoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo [flags]",
		Short: "Run the service with a built-in function app and a chat page to open in a browser",
		Long: `Run the service (with every flag of serve) together with a demo function app made with
package functions: negotiate, a trigger for broadcast, joinGroup and sendToGroup, and messages
sent through the output binding. It prints the URL of the chat page (open it in two windows)
and of the live view, which shows the hub's connections and every event as it happens.`,
		Args: noArgs,
	}
	cmd.RunE = a.runServe(bindSettings(cmd.Flags()), true)
	return cmd
}

// startDemo starts the demo function app, mounts it on the service and makes it the
// upstream of hub chat; it returns the links to print.
func (a *app) startDemo(ctx context.Context, cfg *server.Config, opts *server.Options, addr net.Addr, endpoint string, log *slog.Logger) (func(), []string, error) {
	app, err := demo.New(ctx, endpoint, cfg.AccessKeys[0], log)
	if err != nil {
		return nil, nil, failed("demo: %w", err)
	}
	opts.Mount = map[string]http.Handler{demo.Prefix: app.Handler()}
	// The service calls the demo's trigger over loopback, as it would call any function app.
	port := addr.(*net.TCPAddr).Port
	cfg.Upstreams = append(cfg.Upstreams, server.UpstreamRule{
		URL: cfg.Scheme() + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + demo.TriggerPath, Hub: demo.Hub,
	})
	links := []string{"Demo chat: " + endpoint + demo.Prefix + "  (open it in two windows; ?user=NAME picks a name)"}
	if !cfg.NoTrace {
		tok, err := auth.NewToken(cfg.AccessKeys[0], auth.TokenOptions{Audience: auth.ClientAudience(endpoint, server.TraceHub), Lifetime: traceTokenLifetime})
		if err != nil {
			_ = app.Close()
			return nil, nil, failed("demo: %w", err)
		}
		links = append(links, "Live view: "+endpoint+"/_/trace#token="+tok)
	}
	return func() { _ = app.Close() }, links, nil
}
