package auth

import (
	"slices"
	"sync"
	"time"
)

// Bounds of the verified-token caches, one for each endpoint. A client token is
// presented twice (negotiate, then connect) and an entry costs about 800 bytes: 4,096
// of them were a third of a KB per connection of a server holding 10,000 idle ones
// (docs/performance.md, S4), so clients get 1,024, which still hold every token from
// its negotiate to its connect. REST callers reuse one token per path for as long as
// it lives, and a deployment sends to thousands of users: 4,096 of those are kept
// (S3). When full, the expired entries and then a quarter at random are dropped.
const (
	maxCachedClientTokens = 1024
	maxCachedRESTTokens   = 4096
)

// verifiedToken is what a token whose signature verified says: everything validate
// needs to accept it again without parsing and verifying it.
type verifiedToken struct {
	exp    time.Time
	auds   []audience // parsed: a cached token is not parsed again
	userID string
	claims []Claim
}

func newVerifiedToken(exp time.Time, auds []string, userID string, claims []Claim) *verifiedToken {
	return &verifiedToken{exp: exp, auds: parseAudiences(auds), userID: userID, claims: claims}
}

// verifiedCache remembers tokens whose signature verified, by their exact bytes,
// until they expire: callers that reuse a token (REST callers with a pre-signed one,
// a client that reconnects) skip the HMAC and the JSON decoding. The expiry and the
// audience are still checked on every use. Only tokens that verified are kept, so
// garbage cannot fill it; it is bounded, and cleared with its Validator (a key
// rotation replaces the Validator).
type verifiedCache struct {
	mu   sync.Mutex
	keys []string // the keys the entries verified with
	m    map[string]*verifiedToken
}

// get returns the entry of token if it verified with keys.
func (c *verifiedCache) get(token string, keys []string) *verifiedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Equal(c.keys, keys) {
		// The keys changed under the Validator: nothing cached may be trusted.
		c.m = nil
		return nil
	}
	return c.m[token]
}

func (c *verifiedCache) put(token string, e *verifiedToken, keys []string, now time.Time, limit int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || !slices.Equal(c.keys, keys) {
		c.keys = slices.Clone(keys)
		c.m = make(map[string]*verifiedToken)
	}
	if len(c.m) >= limit {
		// Drop the expired entries, and if that is not enough a quarter of the rest
		// (map order is random): a full cache never refuses to verify.
		for k, v := range c.m {
			if !now.Before(v.exp) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < limit*3/4 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[token] = e
}
