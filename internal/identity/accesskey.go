package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KeyIDPrefix starts every KeyId handed out by Keys. The SDK copies the KeyId into
// the kid header of the client tokens it signs, which is how a token says which key
// to check it with.
const KeyIDPrefix = "sbx-ak1."

// DefaultKeyLifetime is how long a derived key signs valid client tokens. The SDK
// fetches a new key every 55 minutes and keeps using an old one for up to 120 when a
// refresh fails; a client token it signs lives an hour more. Three hours covers both.
const DefaultKeyLifetime = 3 * time.Hour

// Keys derives the signing keys that GET /api/v1/auth/accessKey returns. A key is
// HMAC-SHA256(secret, KeyId) with a secret derived from an access key, and the KeyId
// names the identity and the expiry: nothing is stored, so every node of a cluster
// started with the same access keys accepts the keys any node issued, and a key
// dies with its expiry or with the access key it came from.
type Keys struct {
	secrets  [][]byte // one per access key, primary first
	lifetime time.Duration
	now      func() time.Time
}

// NewKeys derives key secrets from the service's access keys (primary first; keys are
// issued with the primary and accepted with any). lifetime <= 0 means
// DefaultKeyLifetime; now nil means time.Now.
func NewKeys(accessKeys []string, lifetime time.Duration, now func() time.Time) (*Keys, error) {
	k := &Keys{lifetime: lifetime, now: now}
	if k.lifetime <= 0 {
		k.lifetime = DefaultKeyLifetime
	}
	if k.now == nil {
		k.now = time.Now
	}
	for _, ak := range accessKeys {
		if ak == "" {
			continue
		}
		m := hmac.New(sha256.New, []byte(ak))
		m.Write([]byte("signalbox identity access key v1"))
		k.secrets = append(k.secrets, m.Sum(nil))
	}
	if len(k.secrets) == 0 {
		return nil, errors.New("identity: derived keys need an access key")
	}
	return k, nil
}

// Issue returns a KeyId and key for the identity objectID, and when the key expires.
func (k *Keys) Issue(objectID string) (keyID, key string, expires time.Time) {
	expires = k.now().Add(k.lifetime).Truncate(time.Second)
	keyID = KeyIDPrefix + strconv.FormatInt(expires.Unix(), 10) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(objectID))
	return keyID, derive(k.secrets[0], keyID), expires
}

// ErrKeyExpired: the KeyId's key has expired.
var ErrKeyExpired = errors.New("identity: the signing key has expired")

// Lookup returns the keys that may have signed a token carrying keyID (one per access
// key, since a key issued with a former primary stays valid), or an error when keyID
// is not a KeyId of Keys or has expired. IsKeyID tells the first case apart.
func (k *Keys) Lookup(keyID string) ([]string, error) {
	exp, _, err := ParseKeyID(keyID)
	if err != nil {
		return nil, err
	}
	if !k.now().Before(exp) {
		return nil, ErrKeyExpired
	}
	out := make([]string, len(k.secrets))
	for i, s := range k.secrets {
		out[i] = derive(s, keyID)
	}
	return out, nil
}

// IsKeyID reports whether kid has the shape of a KeyId of Keys.
func IsKeyID(kid string) bool { return strings.HasPrefix(kid, KeyIDPrefix) }

// ParseKeyID splits a KeyId into its expiry and identity.
func ParseKeyID(keyID string) (expires time.Time, objectID string, err error) {
	rest, ok := strings.CutPrefix(keyID, KeyIDPrefix)
	if !ok {
		return time.Time{}, "", fmt.Errorf("identity: kid is not a Signalbox KeyId")
	}
	secs, id, ok := strings.Cut(rest, ".")
	if !ok || secs == "" || len(secs) > 12 {
		return time.Time{}, "", fmt.Errorf("identity: malformed KeyId")
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || n <= 0 || secs[0] == '0' {
		return time.Time{}, "", fmt.Errorf("identity: malformed KeyId expiry")
	}
	// Re-encoding must give id back: the decoder skips CR and LF, which would give
	// one KeyId several spellings.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(id)
	if err != nil || len(raw) == 0 || base64.RawURLEncoding.EncodeToString(raw) != id {
		return time.Time{}, "", fmt.Errorf("identity: malformed KeyId identity")
	}
	return time.Unix(n, 0), string(raw), nil
}

func derive(secret []byte, keyID string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(keyID))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
