package server

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/identity"
)

// liveSettings are the settings Reload may change while connections stay up. They are
// replaced as a whole, never modified, so a request that loaded them sees one
// consistent set.
type liveSettings struct {
	cfg     Config         // the limits are read from here
	gate    *identity.Gate // every token check; its Local holds the access keys
	origins originPolicy
	proxies []netip.Prefix // trusted-proxies
}

// newLiveSettings builds the live settings of cfg. The gate is prev's with cfg's
// access keys (the identity verifier and derived keys stay), or, without prev, a gate
// of the access keys alone that New completes.
func newLiveSettings(cfg Config, prev *identity.Gate) (*liveSettings, error) {
	origins, err := newOriginPolicy(cfg.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("server: allowed-origins: %w", err)
	}
	proxies, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server: trusted-proxies: %w", err)
	}
	gate := &identity.Gate{}
	if prev != nil {
		*gate = *prev
	}
	gate.Local = &auth.Validator{Keys: append([]string(nil), cfg.AccessKeys...), MaxLength: cfg.MaxTokenSize}
	gate.MaxTokenLength = cfg.MaxTokenSize
	return &liveSettings{cfg: cfg, gate: gate, origins: origins, proxies: proxies}, nil
}

func (s *Server) setLive(l *liveSettings) {
	s.live.Store(l)
	s.adm.setRate(l.cfg.NegotiateRate, l.cfg.NegotiateBurst)
	if s.node != nil {
		s.node.SetMaxGroups(l.cfg.MaxGroupsPerConnection)
	}
}

// gateNow returns the token gate of the access keys configured now.
func (s *Server) gateNow() *identity.Gate { return s.live.Load().gate }

// originPolicy returns the allowed-origins policy configured now.
func (s *Server) originPolicy() originPolicy { return s.live.Load().origins }

// limits returns the configuration whose limits apply now.
func (s *Server) limits() *Config { return &s.live.Load().cfg }

// clientAddr is the client address of r for the limits (see the package function).
func (s *Server) clientAddr(r *http.Request) string { return clientAddr(r, s.live.Load().proxies) }
