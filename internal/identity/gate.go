package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

// ErrLocalAuthDisabled: an access-key token was presented while local auth is off.
var ErrLocalAuthDisabled = fmt.Errorf("%w: access-key tokens are refused (local auth is disabled)", auth.ErrBadSignature)

// ErrIdentityRequired: an operation that only a Microsoft Entra identity may call got
// another kind of token (or the service trusts no issuer).
var ErrIdentityRequired = fmt.Errorf("%w: a Microsoft Entra bearer token of a trusted issuer is required", auth.ErrBadSignature)

// Gate sends each token to the check that applies to it: access-key tokens to Local
// (unless local auth is disabled), client tokens whose kid is a KeyId of Keys to those
// keys, and RS256/ES256 bearer tokens on the REST API to the Verifier. Its fields must
// not change while it is in use.
type Gate struct {
	// Local validates access-key tokens (required; its Keys may be the generated key).
	Local *auth.Validator
	// DisableLocalAuth refuses access-key tokens, as Azure's disableLocalAuth does;
	// tokens signed with derived keys and identity tokens still pass.
	DisableLocalAuth bool
	// Verifier checks identity tokens; nil when no issuer is trusted.
	Verifier *Verifier
	// Keys are the derived signing keys; nil when no issuer is trusted.
	Keys *Keys
	// MaxTokenLength is the longest token of any kind accepted, in characters;
	// 0 means auth.MaxTokenLength. Local (and the validators of derived keys) and
	// Verifier should be built with the same figure.
	MaxTokenLength int
}

// maxLen is MaxTokenLength or its default.
func (g *Gate) maxLen() int {
	if g.MaxTokenLength > 0 {
		return g.MaxTokenLength
	}
	return auth.MaxTokenLength
}

// tooLong refuses a token longer than the gate accepts, before any parsing.
func (g *Gate) tooLong(token string) error {
	if limit := g.maxLen(); len(token) > limit {
		return fmt.Errorf("auth: %d characters, more than %d: %w", len(token), limit, auth.ErrTokenTooLong)
	}
	return nil
}

// ValidateClient validates a client token for hub.
func (g *Gate) ValidateClient(token, hub string) (*auth.Principal, error) {
	if err := g.tooLong(token); err != nil {
		return nil, err
	}
	// The header is decoded here only when derived keys exist: otherwise every token
	// goes to Local, which decodes it anyway (and not at all for a token it has
	// verified before).
	if kid := g.derivedKeyID(token); kid != "" {
		keys, err := g.Keys.Lookup(kid)
		if err != nil {
			if errors.Is(err, ErrKeyExpired) {
				return nil, fmt.Errorf("auth: client token: %w: %w", auth.ErrExpired, err)
			}
			return nil, fmt.Errorf("auth: client token: %w: %w", auth.ErrBadSignature, err)
		}
		v := g.withKeys(keys)
		return v.ValidateClient(token, hub)
	}
	if g.DisableLocalAuth {
		return nil, fmt.Errorf("auth: client token: %w", ErrLocalAuthDisabled)
	}
	return g.Local.ValidateClient(token, hub)
}

// AuthenticateREST checks the bearer token of a REST request for path.
func (g *Gate) AuthenticateREST(ctx context.Context, token, path string) error {
	if err := g.tooLong(token); err != nil {
		return err
	}
	// As in ValidateClient, the header is only decoded when there is a choice to make.
	if g.Verifier != nil {
		if alg, _ := peekHeader(token); !strings.HasPrefix(alg, "HS") {
			_, err := g.Verifier.Verify(ctx, token)
			return err
		}
	}
	if g.DisableLocalAuth {
		return ErrLocalAuthDisabled
	}
	return g.Local.CheckREST(token, path)
}

// AccessKey answers GET /api/v1/auth/accessKey: the caller's identity token is verified
// and a key derived for its identity is returned.
func (g *Gate) AccessKey(ctx context.Context, token string) (keyID, key string, expires time.Time, err error) {
	if g.Verifier == nil || g.Keys == nil {
		return "", "", time.Time{}, ErrIdentityRequired
	}
	if err := g.tooLong(token); err != nil {
		return "", "", time.Time{}, err
	}
	if alg, _ := peekHeader(token); strings.HasPrefix(alg, "HS") {
		return "", "", time.Time{}, ErrIdentityRequired
	}
	id, err := g.Verifier.Verify(ctx, token)
	if err != nil {
		return "", "", time.Time{}, err
	}
	keyID, key, expires = g.Keys.Issue(id.ObjectID)
	return keyID, key, expires, nil
}

// SigningKey returns the key and kid that tokens the service mints itself
// (:generateToken) are signed with: the primary access key, or a derived key of the
// service when local auth is disabled (an access-key token would then be refused).
func (g *Gate) SigningKey() (key, kid string) {
	if g.DisableLocalAuth && g.Keys != nil {
		kid, key, _ = g.Keys.Issue("signalbox")
		return key, kid
	}
	return g.Local.Keys[0], ""
}

// withKeys is the local validator's settings with other keys. It is built field by
// field: a Validator is not copied, since its cache of verified tokens belongs to
// its keys.
func (g *Gate) withKeys(keys []string) *auth.Validator {
	v := &auth.Validator{Keys: keys, MaxLength: g.MaxTokenLength}
	if l := g.Local; l != nil {
		v.ClockSkew, v.Now, v.Hosts = l.ClockSkew, l.Now, l.Hosts
	}
	return v
}

// derivedKeyID returns the kid of token when it names a key of g.Keys, else "".
func (g *Gate) derivedKeyID(token string) string {
	if g.Keys == nil {
		return ""
	}
	if _, kid := peekHeader(token); IsKeyID(kid) {
		return kid
	}
	return ""
}

// peekHeader returns the alg and kid of a JWT's header without verifying anything;
// callers refuse tokens longer than the gate accepts first.
func peekHeader(token string) (alg, kid string) {
	i := strings.IndexByte(token, '.')
	if i <= 0 {
		return "", ""
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if !decodeSegment(token[:i], &h) {
		return "", ""
	}
	return h.Alg, h.Kid
}
