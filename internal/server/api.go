package server

import (
	"context"
	"net/http"
	"runtime"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/restapi"
)

// restAPI is the data-plane REST API on top of the server's registry.
func (s *Server) restAPI() http.Handler {
	return restapi.New(restapi.Options{
		Hubs: s.node,
		// The gate (access-key and identity tokens) as configured now: Reload swaps it.
		Authenticator:           liveGate{s},
		AccessKey:               s.accessKey(),
		Calls:                   s.calls,
		Connections:             s.calls,
		MaxArgumentDepth:        s.cfg.MaxArgumentDepth,
		MaxConcurrentBroadcasts: concurrentBroadcasts(s.cfg.MaxConcurrentBroadcasts),
		BroadcastQueueWait:      s.cfg.BroadcastQueueWait,
		IssueToken:              s.issueClientToken,
		Logger:                  s.log,
		Health:                  http.HandlerFunc(s.health),
		Observe:                 s.traceREST,
		OnAuthFailure: func(r *http.Request, err error) {
			s.authFailed(r, "rest", err)
		},
	})
}

// issueClientToken mints a client token whose audience is the public client URL of
// hub, signed with the primary key.
func (s *Server) issueClientToken(hubName, userID string, lifetime time.Duration) (string, error) {
	key, kid := s.gateNow().SigningKey()
	return auth.NewToken(key, auth.TokenOptions{
		KeyID:    kid,
		Audience: auth.ClientAudience(s.Endpoint(), hubName),
		Lifetime: lifetime,
		UserID:   userID,
	})
}

// liveGate checks REST tokens with the gate configured now.
type liveGate struct{ s *Server }

func (g liveGate) AuthenticateREST(ctx context.Context, token, path string) error {
	return g.s.gateNow().AuthenticateREST(ctx, token, path)
}

// concurrentBroadcasts turns the max-concurrent-broadcasts setting into the REST
// handler's limit (0 = unlimited there). A fan-out is answered once queued and keeps
// its slot until its writes are done (hub.Background). Eight fan-outs per CPU by
// default: the frames of broadcasts that overlap leave in one write per connection,
// which is what keeps the CPU per delivery down under overload (3.1-3.9 µs at 16
// against 12-13 µs at 2 in an A/B at 10,000×100/s on 2 CPUs, docs/performance.md S1).
func concurrentBroadcasts(setting int) int {
	switch {
	case setting < 0:
		return 0
	case setting == 0:
		return 8 * runtime.GOMAXPROCS(0)
	}
	return setting
}
