// Package auth implements the access-key authentication of Signalbox: the JWTs that
// clients and servers present, their audiences, token extraction from HTTP requests,
// and the signature the service puts on upstream requests.
package auth

import (
	"errors"
	"net/http"
	"time"
)

// MaxTokenLength is the longest access token, in characters, that is issued or accepted.
const MaxTokenLength = 4096

// Errors returned by token creation and validation. They are wrapped with context;
// test them with errors.Is.
var (
	ErrNoToken      = errors.New("no access token")
	ErrTokenTooLong = errors.New("AccessToken must not be longer than 4K.")
	ErrBadSignature = errors.New("invalid token signature")
	ErrExpired      = errors.New("token expired")
	ErrAudience     = errors.New("invalid token audience")
	ErrAlgorithm    = errors.New("token algorithm not allowed")
	ErrMalformed    = errors.New("malformed token")
)

// Claim is one claim of a token: a type and its value as text.
type Claim struct{ Type, Value string }

// Principal is the identity carried by a validated token.
type Principal struct {
	UserID  string
	Claims  []Claim
	Expires time.Time
}

// TokenOptions configures NewToken.
type TokenOptions struct {
	Audience  string
	Lifetime  time.Duration // default 1h
	UserID    string        // -> asrs.s.uid
	Claims    []Claim
	Algorithm string // "HS256" default | "HS512"
	KeyID     string
	Issuer    string
	Now       func() time.Time
}

// NewToken signs a token with accessKey.
func NewToken(accessKey string, opts TokenOptions) (string, error) {
	return "", errors.New("not implemented")
}

// ClientAudience returns the audience of a client token.
func ClientAudience(endpoint, hub string) string { return "" }

// ClientURL returns the URL a client connects to.
func ClientURL(clientEndpoint, hub string) string { return "" }

// RESTAudience returns the audience of a REST token.
func RESTAudience(endpoint, path string) string { return "" }

// Validator validates access tokens.
type Validator struct {
	Keys      []string
	ClockSkew time.Duration
	Now       func() time.Time
}

// ValidateClient validates a client token for hub.
func (v *Validator) ValidateClient(token, hub string) (*Principal, error) {
	return nil, ErrMalformed
}

// ValidateREST validates a REST token for the request path.
func (v *Validator) ValidateREST(token, path string) (*Principal, error) {
	return nil, ErrMalformed
}

// TokenFromRequest extracts the token from a request.
func TokenFromRequest(r *http.Request) string { return "" }

// UserClaims drops system claims.
func UserClaims(all []Claim) []Claim { return nil }

// UpstreamSignature signs connectionID.
func UpstreamSignature(keys []string, connectionID string) string { return "" }

// VerifyUpstreamSignature verifies header.
func VerifyUpstreamSignature(header string, keys []string, connectionID string) bool { return false }
