package server

import (
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/transport"
)

// Service claims a token may carry to tune its connection (Azure SignalR semantics).
const (
	claimHandshakeTimeout = "asrs.s.cht"  // seconds, at most 30
	claimTransports       = "asrs.s.htt"  // bitmask: 1 WebSockets, 2 SSE, 4 long polling
	claimPollInterval     = "asrs.s.ttl"  // longest long-polling request, seconds
	claimCloseOnExpire    = "asrs.s.coae" // "true": close the connection when aeo passes
	claimAuthExpiresAt    = "asrs.s.aeo"  // unix seconds
)

const maxClaimHandshakeTimeout = 30 * time.Second

// tokenSettings are the per-connection settings read from the token's service claims.
// Zero values mean "as configured".
type tokenSettings struct {
	handshakeTimeout time.Duration
	transports       transport.Kind // allowed transports as a bitmask; 0 = all
	pollTimeout      time.Duration
	authExpires      time.Time // close (reconnect allowed) at this time
}

func settingsFromClaims(claims []auth.Claim) tokenSettings {
	var ts tokenSettings
	var closeOnExpire bool
	var expiresAt int64
	for _, c := range claims {
		v := strings.TrimSpace(c.Value)
		switch c.Type {
		case claimHandshakeTimeout:
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				ts.handshakeTimeout = min(time.Duration(n)*time.Second, maxClaimHandshakeTimeout)
			}
		case claimTransports:
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 7 {
				ts.transports = transport.Kind(n)
			}
		case claimPollInterval:
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				ts.pollTimeout = time.Duration(n) * time.Second
			}
		case claimCloseOnExpire:
			closeOnExpire = strings.EqualFold(v, "true")
		case claimAuthExpiresAt:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				expiresAt = n
			}
		}
	}
	if closeOnExpire && expiresAt > 0 {
		ts.authExpires = time.Unix(expiresAt, 0)
	}
	return ts
}

// allows reports whether the token lets the connection use transport k.
func (ts tokenSettings) allows(k transport.Kind) bool {
	return ts.transports == 0 || ts.transports&k != 0
}

// offered filters the transports of a negotiate response.
func (ts tokenSettings) offered() []transportInfo {
	if ts.transports == 0 {
		return availableTransports
	}
	out := make([]transportInfo, 0, len(availableTransports))
	for i, k := range []transport.Kind{transport.WebSockets, transport.ServerSentEvents, transport.LongPolling} {
		if ts.allows(k) {
			out = append(out, availableTransports[i])
		}
	}
	return out
}
