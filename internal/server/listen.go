package server

import (
	"context"
	"net"
	"time"

	"github.com/signalbox-io/signalbox/internal/rawtcp"
)

// The TCP keep-alive of every accepted connection: Go's defaults (net.KeepAliveConfig),
// which end a connection whose peer vanished, such as a REST request cut off mid-body
// (nothing else times out a body being read).
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 15 * time.Second
	keepAliveCount    = 9
)

// Listen opens the TCP listener for Serve. Every accepted connection has TCP
// keep-alive as net.Listen gives it (15 s idle, 15 s between probes, 9 probes); on
// Linux it is set once on the listening socket, which accepted sockets inherit, instead
// of with four setsockopt calls per accepted connection (S5 of docs/performance.md).
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := listenConfig().Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return rawtcp.Listener(ln), nil
}
