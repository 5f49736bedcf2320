// Command signalbox is a self-hosted SignalR service compatible with Azure SignalR
// Service in serverless mode. See internal/server for everything it does.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signalbox-io/signalbox/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process during the drain
	}()
	code := server.CLI{Version: version, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
