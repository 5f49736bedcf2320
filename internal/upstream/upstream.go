// Package upstream forwards client connection events and hub invocations, signed, to the
// function app (the "upstream" of Azure SignalR serverless mode) and relays invocation
// results back to the client.
package upstream

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// Rule maps hub/category/event patterns to a URL template.
type Rule struct {
	URLTemplate, HubPattern, CategoryPattern, EventPattern string
}

// Options configures an Upstream.
type Options struct {
	Rules           []Rule
	AccessKeys      []string
	Timeout         time.Duration
	Parallelism     int
	QueueSize       int
	MaxConnsPerHost int
	Logger          *slog.Logger
	HTTPClient      *http.Client
}

// Upstream delivers events to the configured upstream URLs.
type Upstream struct{}

// ConnInfo describes one client connection.
type ConnInfo struct {
	ID, Hub, UserID, Query string
	Claims                 []auth.Claim
	Protocol               protocol.Protocol
}

// Session is the upstream side of one client connection.
type Session struct{}

// New validates the options and returns an Upstream.
func New(opts Options) (*Upstream, error) { return &Upstream{}, nil }

// Open starts a session for one connection.
func (u *Upstream) Open(info ConnInfo, reply func(frame []byte)) *Session { return &Session{} }

// Connected queues the connected event.
func (s *Session) Connected() {}

// Invoke queues one client invocation.
func (s *Session) Invoke(inv *protocol.Invocation) {}

// Disconnected queues the disconnected event.
func (s *Session) Disconnected(errText string) {}

// Close waits for in-flight work.
func (u *Upstream) Close(ctx context.Context) error { return nil }
