package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// minRefetch is how often a token naming an unknown key may make the service fetch the
// issuer's JWKS again: often enough to follow a key rotation at once, rarely enough
// that tokens with made-up kids cannot turn the service against the issuer.
const minRefetch = 10 * time.Second

// maxJWKSBytes bounds the JWKS document.
const maxJWKSBytes = 1 << 20

// keySet is the issuer's JWKS as a go-oidc KeySet: fetched on first use, cached, and
// fetched again when a token names a kid the cache lacks, at most once per minRefetch.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex // serializes fetches too
	keys      []jose.JSONWebKey
	fetchedAt time.Time // last fetch attempt
	fetches   int       // for tests
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("malformed jwt: one signature expected")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	defer k.mu.Unlock()
	if payload, known := verifyWith(jws, k.keys, kid); payload != nil {
		return payload, nil
	} else if known {
		return nil, errors.New("failed to verify signature")
	}
	if !k.fetchedAt.IsZero() && k.now().Sub(k.fetchedAt) < minRefetch {
		return nil, errors.New("failed to verify signature: unknown key (JWKS fetched recently)")
	}
	k.fetchedAt = k.now()
	keys, err := k.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to verify signature: fetching keys: %w", err)
	}
	k.keys = keys
	if payload, _ := verifyWith(jws, k.keys, kid); payload != nil {
		return payload, nil
	}
	return nil, errors.New("failed to verify signature")
}

// verifyWith tries the keys named kid (every key when kid is empty); known reports
// whether a key with that kid was there.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) (payload []byte, known bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		known = true
		if p, err := jws.Verify(&keys[i]); err == nil {
			return p, true
		}
	}
	return nil, known
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.fetches++
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS answered %s", resp.Status)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("JWKS is not JSON: %w", err)
	}
	// Keys of types go-jose does not know (or malformed ones) are skipped, as RFC 7517
	// asks, instead of failing the whole set.
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(r, &jwk); err == nil && jwk.Valid() && jwk.IsPublic() {
			keys = append(keys, jwk)
		}
	}
	return keys, nil
}
