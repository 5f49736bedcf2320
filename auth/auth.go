// Package auth implements the access-key authentication of Signalbox, compatible with
// Azure SignalR Service: the HS256/HS512 JWTs that clients and app servers present
// (minted with [NewToken], checked with [Validator]), the audiences those tokens carry
// ([ClientAudience], [RESTAudience]), token extraction from HTTP requests
// ([TokenFromRequest]) and the signature the service puts on upstream requests
// ([UpstreamSignature], [VerifyUpstreamSignature]).
//
// An access key is used as the UTF-8 bytes of the string as written; it is never
// base64-decoded, even when it looks like base64. That is what the Azure SDKs do, so a
// connection string works unchanged against Azure and against Signalbox.
//
// Errors are wrapped sentinels ([ErrNoToken], [ErrTokenTooLong], [ErrBadSignature],
// [ErrExpired], [ErrAudience], [ErrAlgorithm], [ErrMalformed]); test them with
// errors.Is. No error text ever contains the token, a key, or a claim of the token.
package auth

import (
	"errors"
	"time"
)

// MaxTokenLength is the longest access token, in characters, that is issued, and
// accepted unless Validator.MaxLength says otherwise. The Azure SDK refuses to issue
// longer tokens; the validator rejects them before parsing, which also bounds the
// work an attacker can cause (CVE-2025-30204).
const MaxTokenLength = 4096

// Errors returned by token creation and validation. Validation errors are wrapped with
// context; test them with errors.Is.
var (
	// ErrNoToken: the request carried no access token.
	ErrNoToken = errors.New("no access token")
	// ErrTokenTooLong: the token is longer than allowed (MaxTokenLength). The text is
	// the one the Azure SDK uses; NewToken returns this error unwrapped.
	ErrTokenTooLong = errors.New("AccessToken must not be longer than 4K.")
	// ErrBadSignature: the signature verifies with none of the configured keys.
	ErrBadSignature = errors.New("invalid token signature")
	// ErrExpired: the token's exp is in the past (beyond the clock skew).
	ErrExpired = errors.New("token expired")
	// ErrAudience: the token's aud does not name the hub or REST path being accessed.
	ErrAudience = errors.New("invalid token audience")
	// ErrAlgorithm: the token's alg is not HS256 or HS512 (this includes "none").
	ErrAlgorithm = errors.New("token algorithm not allowed")
	// ErrMalformed: the token is not a well-formed JWT, or a required claim has the
	// wrong type.
	ErrMalformed = errors.New("malformed token")
)

// Claim is one claim of a token: its type (the JSON name in the token) and its value as
// text. Numbers keep their JSON text, booleans are "true"/"false", objects are compact
// JSON, and an array claim becomes one Claim per element.
type Claim struct{ Type, Value string }

// Principal is the identity carried by a validated token.
type Principal struct {
	// UserID comes from asrs.s.uid, else nameid (or the long .NET nameidentifier
	// claim type), else sub; empty when none is present.
	UserID string
	// Claims holds every claim of the token, system claims included, in token order.
	// Use UserClaims to get the ones that belong to the user.
	Claims []Claim
	// Expires is the token's exp.
	Expires time.Time
}

// Claim types with a meaning to the service.
const (
	// ClaimUserID is the claim the SDKs put the user id in.
	ClaimUserID = "asrs.s.uid"
	// ClaimNameID is the short JWT name of .NET's ClaimTypes.NameIdentifier.
	ClaimNameID = "nameid"
	// ClaimNameIdentifierURI is the long .NET name-identifier claim type, accepted as
	// a user id when a token carries it unshortened.
	ClaimNameIdentifierURI = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"
	// SystemClaimPrefix starts every claim reserved for the service.
	SystemClaimPrefix = "asrs.s."
	// UserClaimPrefix is put in front of a user claim whose name collides with a JWT
	// system claim; UserClaims strips it again.
	UserClaimPrefix = "asrs.u."
)
