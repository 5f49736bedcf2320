package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/identity"
	"github.com/signalbox-io/signalbox/internal/restapi"
)

// newGate builds the token gate: access-key tokens through local, and, with an identity
// issuer, identity tokens on the REST API and the keys derived for identities.
func newGate(cfg Config, local *auth.Validator, log *slog.Logger) (*identity.Gate, error) {
	g := &identity.Gate{Local: local, DisableLocalAuth: cfg.DisableLocalAuth, MaxTokenLength: cfg.MaxTokenSize}
	if cfg.IdentityIssuer == "" {
		return g, nil
	}
	v, err := identity.NewVerifier(identity.VerifierOptions{
		Issuer:   cfg.IdentityIssuer,
		Audience: cfg.IdentityAudience,
		Allow:    cfg.IdentityAllow,
		Logger:   log,
		// The gate refuses longer tokens first; the verifier's own bound must not
		// refuse what the gate lets through.
		MaxTokenLength: cfg.MaxTokenSize,
	})
	if err != nil {
		return nil, fmt.Errorf("server: identity: %w", err)
	}
	keys, err := identity.NewKeys(cfg.AccessKeys, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("server: identity: %w", err)
	}
	g.Verifier, g.Keys = v, keys
	return g, nil
}

// accessKey is GET /api/v1/auth/accessKey, or nil when no identity issuer is trusted.
func (s *Server) accessKey() restapi.AccessKeyFunc {
	if s.gateNow().Verifier == nil {
		return nil
	}
	return func(ctx context.Context, token string) (string, string, time.Time, error) {
		return s.gateNow().AccessKey(ctx, token)
	}
}

// validateIdentity checks the identity settings.
func (c *Config) validateIdentity(bad func(string, ...any)) {
	if c.IdentityIssuer != "" {
		u, err := url.Parse(c.IdentityIssuer)
		switch {
		case err != nil:
			bad("identity-issuer: %v", urlErrCause(err))
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
			bad("identity-issuer: %q must be an absolute http:// or https:// URL", c.IdentityIssuer)
		case u.RawQuery != "" || u.Fragment != "":
			bad("identity-issuer: %q must not have a query or fragment", c.IdentityIssuer)
		}
	} else {
		if c.IdentityAudience != "" {
			bad("identity-audience: needs identity-issuer")
		}
		if len(c.IdentityAllow) > 0 {
			bad("identity-allow: needs identity-issuer")
		}
		if c.DisableLocalAuth {
			bad("disable-local-auth: needs identity-issuer (nothing could authenticate)")
		}
	}
}
