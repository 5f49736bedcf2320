package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"strconv"
	"testing"
	"time"
)

const (
	testKey      = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFG="
	testKey2     = "secondary-key"
	testEndpoint = "https://foo.service.signalr.net"
)

// testNow is a fixed clock for every test.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// mustToken mints a token or fails the test.
func mustToken(t testing.TB, key string, opts TokenOptions) string {
	t.Helper()
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	s, err := NewToken(key, opts)
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}
	return s
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// handToken builds a JWT from raw header and payload JSON, signed with key using
// HMAC over hash h (nil = empty signature). It lets tests produce tokens NewToken
// never would.
func handToken(header, payload, key string, h func() hash.Hash) string {
	signing := b64(header) + "." + b64(payload)
	if h == nil {
		return signing + "."
	}
	m := hmac.New(h, []byte(key))
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var (
	hs256 = sha256.New
	hs512 = sha512.New
	hs384 = sha512.New384
)

func hdr(alg string) string { return `{"alg":"` + alg + `","typ":"JWT"}` }

// payload returns claims JSON with exp relative to testNow.
func payload(aud string, expOffset time.Duration, extra ...string) string {
	p := `{"aud":"` + aud + `","exp":` + itoa(testNow.Add(expOffset).Unix())
	for _, e := range extra {
		p += "," + e
	}
	return p + "}"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
