package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/signalbox-io/signalbox/auth"
)

// DefaultAudience is the audience of Microsoft Entra tokens for Azure SignalR Service
// (the scope https://signalr.azure.com/.default without its suffix).
const DefaultAudience = "https://signalr.azure.com"

// signingAlgs are the only algorithms an identity token may use. HMAC algorithms are
// excluded, so a token "signed" with the issuer's public key as an HMAC secret (alg
// confusion) never verifies.
var signingAlgs = []string{"RS256", "ES256"}

// discoveryRetry is how long a failed discovery is remembered before it is tried again,
// so an unreachable issuer does not cost every request a round trip.
const discoveryRetry = 5 * time.Second

// ErrUntrusted is wrapped by every refusal of a token that is not a valid identity token
// of the trusted issuer for the audience (signature, issuer, audience, expiry,
// algorithm). It also wraps auth.ErrBadSignature so callers treating tokens alike see a
// 401 cause.
var ErrUntrusted = fmt.Errorf("identity token not trusted: %w", auth.ErrBadSignature)

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	// Issuer is the trusted OIDC issuer URL (required). Its discovery document names
	// the JWKS; tokens must carry exactly the issuer the document states.
	Issuer string
	// Audience defaults to DefaultAudience.
	Audience string
	// Allow lists the identities allowed in (object id or client id, compared
	// case-insensitively); empty allows every identity of the issuer.
	Allow []string
	// HTTPClient fetches discovery and keys; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now replaces time.Now (tests).
	Now func() time.Time
	// Logger nil discards.
	Logger *slog.Logger
	// MaxTokenLength is the longest token accepted, in characters; 0 means
	// auth.MaxTokenLength.
	MaxTokenLength int
}

// Verifier checks Microsoft Entra-style bearer tokens from one OIDC issuer. The
// discovery document is fetched on first use (and again after a failure), the JWKS is
// cached and fetched again when a token names a key it does not hold, at most once
// every 10 seconds. It is safe for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	allow    map[string]bool
	client   *http.Client
	now      func() time.Time
	log      *slog.Logger
	maxLen   int

	mu       sync.Mutex
	keys     *keySet
	idv      *oidc.IDTokenVerifier
	failedAt time.Time
	failErr  error
}

// NewVerifier checks opts and returns a Verifier; nothing is fetched yet.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	u, err := url.Parse(opts.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("identity: issuer %q is not an absolute http(s) URL", opts.Issuer)
	}
	v := &Verifier{
		issuer:   opts.Issuer,
		audience: opts.Audience,
		client:   opts.HTTPClient,
		now:      opts.Now,
		log:      opts.Logger,
		maxLen:   opts.MaxTokenLength,
	}
	if v.maxLen <= 0 {
		v.maxLen = auth.MaxTokenLength
	}
	if v.audience == "" {
		v.audience = DefaultAudience
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: 10 * time.Second}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	for _, a := range opts.Allow {
		if a = strings.TrimSpace(a); a != "" {
			if v.allow == nil {
				v.allow = make(map[string]bool)
			}
			v.allow[strings.ToLower(a)] = true
		}
	}
	return v, nil
}

// Verify checks token and returns its identity. A token that is not a valid identity
// token wraps ErrUntrusted; a valid token of an identity not on the allow-list wraps
// auth.ErrForbidden. Error texts never contain the token.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	// Cheap checks on the unverified token first: only a token that claims the trusted
	// issuer with an allowed algorithm may cause a key fetch.
	alg, iss, ok := peek(token, v.maxLen)
	if !ok {
		return Identity{}, fmt.Errorf("%w: not a JWT", ErrUntrusted)
	}
	if alg != signingAlgs[0] && alg != signingAlgs[1] {
		return Identity{}, fmt.Errorf("%w: alg %q is not RS256 or ES256", ErrUntrusted, alg)
	}
	if strings.TrimRight(iss, "/") != strings.TrimRight(v.issuer, "/") {
		return Identity{}, fmt.Errorf("%w: issuer is not the trusted one", ErrUntrusted)
	}
	idv, err := v.verifier(ctx)
	if err != nil {
		return Identity{}, err
	}
	t, err := idv.Verify(ctx, token)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return Identity{}, fmt.Errorf("%w: %w", ErrUntrusted, auth.ErrExpired)
		}
		return Identity{}, fmt.Errorf("%w: %s", ErrUntrusted, oidcReason(err))
	}
	var c struct {
		OID   string `json:"oid"`
		AppID string `json:"appid"`
		AZP   string `json:"azp"`
		TID   string `json:"tid"`
	}
	if err := t.Claims(&c); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %v", ErrUntrusted, err)
	}
	id := Identity{ObjectID: c.OID, ClientID: c.AppID, TenantID: c.TID}
	if id.ObjectID == "" {
		id.ObjectID = t.Subject
	}
	if id.ClientID == "" {
		id.ClientID = c.AZP
	}
	if id.ObjectID == "" {
		return Identity{}, fmt.Errorf("%w: token has neither oid nor sub", ErrUntrusted)
	}
	if v.allow != nil && !v.allow[strings.ToLower(id.ObjectID)] && !v.allow[strings.ToLower(id.ClientID)] {
		return Identity{}, fmt.Errorf("%w: identity %s (client id %s) is not on the allow-list", auth.ErrForbidden, id.ObjectID, id.ClientID)
	}
	return id, nil
}

// verifier returns the go-oidc verifier, running discovery the first time.
func (v *Verifier) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.idv != nil {
		return v.idv, nil
	}
	if v.failErr != nil && v.now().Sub(v.failedAt) < discoveryRetry {
		return nil, v.failErr
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, v.client), v.issuer)
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err == nil {
		if err = p.Claims(&doc); err == nil && doc.JWKSURI == "" {
			err = errors.New("the discovery document names no jwks_uri")
		}
	}
	if err != nil {
		v.failedAt, v.failErr = v.now(), fmt.Errorf("identity: discovery of issuer %s: %w", v.issuer, err)
		v.log.Warn("identity: OIDC discovery failed", "issuer", v.issuer, "error", err)
		return nil, v.failErr
	}
	// Our own key set instead of go-oidc's remote one: it bounds how often unknown
	// kids make us fetch the JWKS.
	v.keys = &keySet{url: doc.JWKSURI, client: v.client, now: v.now}
	v.idv = oidc.NewVerifier(doc.Issuer, v.keys, &oidc.Config{
		ClientID:             v.audience,
		SupportedSigningAlgs: signingAlgs,
		Now:                  v.now,
	})
	v.failErr = nil
	return v.idv, nil
}

// oidcReason shortens go-oidc's errors to their class: some quote claim values.
func oidcReason(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "expected audience"):
		return auth.ErrAudience.Error()
	case strings.Contains(s, "different provider"):
		return "issuer mismatch"
	case strings.Contains(s, "signature"):
		return auth.ErrBadSignature.Error()
	case strings.Contains(s, "malformed"):
		return auth.ErrMalformed.Error()
	case strings.Contains(s, "nbf"):
		return "token not valid yet"
	}
	return "token rejected"
}

// peek decodes the header alg and payload iss of a JWT without verifying it.
func peek(token string, maxLen int) (alg, iss string, ok bool) {
	if len(token) > maxLen || strings.Count(token, ".") != 2 {
		return "", "", false
	}
	parts := strings.SplitN(token, ".", 3)
	var h struct {
		Alg string `json:"alg"`
	}
	var p struct {
		Iss any `json:"iss"`
	}
	if !decodeSegment(parts[0], &h) || !decodeSegment(parts[1], &p) {
		return "", "", false
	}
	s, _ := p.Iss.(string)
	return h.Alg, s, true
}

func decodeSegment(seg string, v any) bool {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}
