package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	clientAud = testEndpoint + "/client/?hub=chat"
	restPath  = "/api/hubs/chat/:send"
	restAud   = testEndpoint + restPath + "?api-version=2022-06-01"
	// marker is a claim value that must never be echoed in an error.
	marker = "SECRET-CLAIM-VALUE"
)

func newValidator(keys ...string) *Validator {
	if len(keys) == 0 {
		keys = []string{testKey, testKey2}
	}
	return &Validator{Keys: keys, Now: fixedNow}
}

// kind selects the endpoint a token is presented to.
type kind int

const (
	client kind = iota
	rest
)

func (k kind) String() string {
	if k == client {
		return "client"
	}
	return "rest"
}

func (k kind) aud() string {
	if k == client {
		return clientAud
	}
	return restAud
}

func (k kind) validate(v *Validator, tok string) (*Principal, error) {
	if k == client {
		return v.ValidateClient(tok, "chat")
	}
	return v.ValidateREST(tok, restPath)
}

// TestValidateMatrix is the T4 negative matrix: every case runs against both
// audiences (client URL and REST URL), the audience in the token being the right one
// for the endpoint unless the case replaces it.
func TestValidateMatrix(t *testing.T) {
	m := `"m":"` + marker + `"`
	type tc struct {
		name string
		tok  func(k kind) string
		v    *Validator // nil: primary and secondary key
		want error      // nil: accepted
	}
	good := func(k kind) string { return handToken(hdr("HS256"), payload(k.aud(), time.Hour, m), testKey, hs256) }
	cases := []tc{
		// Accepted.
		{name: "HS256 primary", tok: good},
		{name: "HS512 primary", tok: func(k kind) string { return handToken(hdr("HS512"), payload(k.aud(), time.Hour), testKey, hs512) }},
		{name: "HS256 secondary", tok: func(k kind) string { return handToken(hdr("HS256"), payload(k.aud(), time.Hour), testKey2, hs256) }},
		{name: "minted by NewToken", tok: func(k kind) string { return mustToken(t, testKey, TokenOptions{Audience: k.aud()}) }},
		{name: "minted HS512 with kid", tok: func(k kind) string {
			return mustToken(t, testKey2, TokenOptions{Audience: k.aud(), Algorithm: "HS512", KeyID: "-12345"})
		}},
		{name: "unknown kid still tries every key", tok: func(k kind) string {
			return handToken(`{"alg":"HS256","kid":"nope"}`, payload(k.aud(), time.Hour), testKey2, hs256)
		}},
		{name: "no typ header", tok: func(k kind) string { return handToken(`{"alg":"HS256"}`, payload(k.aud(), time.Hour), testKey, hs256) }},
		{name: "expired within skew", tok: func(k kind) string { return handToken(hdr("HS256"), payload(k.aud(), -4*time.Minute), testKey, hs256) }},
		{name: "exp now-skew+1s", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), -DefaultClockSkew+time.Second), testKey, hs256)
		}},
		{name: "nbf in the future ignored", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), time.Hour, `"nbf":`+itoa(testNow.Add(time.Hour).Unix())), testKey, hs256)
		}},
		{name: "iat in the future ignored", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), time.Hour, `"iat":`+itoa(testNow.Add(time.Hour).Unix())), testKey, hs256)
		}},
		{name: "nbf of the wrong type ignored", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), time.Hour, `"nbf":"x"`), testKey, hs256)
		}},
		{name: "exp as float", tok: func(k kind) string {
			return handToken(hdr("HS256"), `{"aud":"`+k.aud()+`","exp":`+itoa(testNow.Unix()+60)+`.5}`, testKey, hs256)
		}},
		{name: "exp year 9999", tok: func(k kind) string {
			return handToken(hdr("HS256"), `{"aud":"`+k.aud()+`","exp":253402300799}`, testKey, hs256)
		}},
		{name: "aud array containing the right value", tok: func(k kind) string {
			return handToken(hdr("HS256"), `{"aud":["https://other/x","`+k.aud()+`"],"exp":`+itoa(testNow.Unix()+60)+`}`, testKey, hs256)
		}},
		{name: "aud with port", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(strings.Replace(k.aud(), ".net/", ".net:8443/", 1), time.Hour), testKey, hs256)
		}},
		{name: "aud host upper case", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(strings.Replace(k.aud(), "foo.service", "FOO.Service", 1), time.Hour), testKey, hs256)
		}},
		{name: "aud scheme upper case", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(strings.Replace(k.aud(), "https", "HTTPS", 1), time.Hour), testKey, hs256)
		}},
		{name: "aud http instead of https (host and scheme not compared)", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(strings.Replace(k.aud(), "https", "http", 1), time.Hour), testKey, hs256)
		}},
		{name: "aud other host (not compared)", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(strings.Replace(k.aud(), "foo.service.signalr.net", "localhost:8888", 1), time.Hour), testKey, hs256)
		}},
		// The client path is fixed and hubs are case-insensitive; a REST path must match
		// exactly (see TestValidateRESTAudienceForms).
		{name: "aud client path upper case", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(strings.Replace(k.aud(), "/client/", "/CLIENT/", 1), time.Hour), testKey, hs256)
		}},

		// Refused.
		{name: "empty", tok: func(kind) string { return "" }, want: ErrNoToken},
		{name: "one part", tok: func(kind) string { return "abc" }, want: ErrMalformed},
		{name: "two parts", tok: func(k kind) string { return strings.Join(strings.Split(good(k), ".")[:2], ".") }, want: ErrMalformed},
		{name: "four parts", tok: func(k kind) string { return good(k) + ".x" }, want: ErrMalformed},
		{name: "many dots", tok: func(kind) string { return strings.Repeat(".", 4000) }, want: ErrMalformed},
		{name: "too long", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), time.Hour, `"pad":"`+strings.Repeat("x", MaxTokenLength)+`"`), testKey, hs256)
		}, want: ErrTokenTooLong},
		{name: "100k dots", tok: func(kind) string { return strings.Repeat(".", 100000) }, want: ErrTokenTooLong},
		{name: "header not base64url", tok: func(k kind) string { return "!!!" + good(k)[strings.IndexByte(good(k), '.'):] }, want: ErrMalformed},
		{name: "header not JSON", tok: func(k kind) string { return handToken("alg=HS256", payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrMalformed},
		{name: "header JSON array", tok: func(k kind) string { return handToken(`["HS256"]`, payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrMalformed},
		{name: "header trailing data", tok: func(k kind) string { return handToken(hdr("HS256")+"{}", payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrMalformed},
		{name: "header duplicate alg", tok: func(k kind) string {
			return handToken(`{"alg":"none","alg":"HS256"}`, payload(k.aud(), time.Hour), testKey, hs256)
		}, want: ErrMalformed},
		{name: "crit header", tok: func(k kind) string {
			return handToken(`{"alg":"HS256","crit":["exp"]}`, payload(k.aud(), time.Hour), testKey, hs256)
		}, want: ErrMalformed},
		{name: "alg not a string", tok: func(k kind) string { return handToken(`{"alg":256}`, payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrMalformed},
		{name: "alg missing", tok: func(k kind) string { return handToken(`{"typ":"JWT"}`, payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrAlgorithm},
		{name: "alg none", tok: func(k kind) string { return handToken(hdr("none"), payload(k.aud(), time.Hour), "", nil) }, want: ErrAlgorithm},
		{name: "alg None", tok: func(k kind) string { return handToken(hdr("None"), payload(k.aud(), time.Hour), "", nil) }, want: ErrAlgorithm},
		{name: "alg NONE", tok: func(k kind) string { return handToken(hdr("NONE"), payload(k.aud(), time.Hour), "", nil) }, want: ErrAlgorithm},
		{name: "alg hs256 lower case", tok: func(k kind) string { return handToken(hdr("hs256"), payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrAlgorithm},
		{name: "alg HS384", tok: func(k kind) string { return handToken(hdr("HS384"), payload(k.aud(), time.Hour), testKey, hs384) }, want: ErrAlgorithm},
		{name: "alg RS256 (key confusion)", tok: func(k kind) string { return handToken(hdr("RS256"), payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrAlgorithm},
		{name: "alg ES256", tok: func(k kind) string { return handToken(hdr("ES256"), payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrAlgorithm},
		{name: "alg PS256", tok: func(k kind) string { return handToken(hdr("PS256"), payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrAlgorithm},
		{name: "header says HS512, signed HS256", tok: func(k kind) string { return handToken(hdr("HS512"), payload(k.aud(), time.Hour), testKey, hs256) }, want: ErrBadSignature},
		{name: "wrong key", tok: func(k kind) string { return handToken(hdr("HS256"), payload(k.aud(), time.Hour, m), "wrong", hs256) }, want: ErrBadSignature},
		{name: "key base64-decoded", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), time.Hour), "\x00\x10\x83\x10Q\x87 \x92\x8b0\xd3\x8fA\x14\x93QU\x97a\x96\x9b\xd7\xdfM\xb7\xe3\x9e\xbb\xf3\xdf\xbf\x00\x10\x83\x10Q\x87", hs256)
		}, want: ErrBadSignature},
		{name: "signature truncated", tok: func(k kind) string { g := good(k); return g[:strings.LastIndexByte(g, '.')+33] }, want: ErrBadSignature},
		{name: "signature with non-zero trailing bits", tok: func(k kind) string { g := good(k); return g[:len(g)-4] }, want: ErrMalformed},
		{name: "signature empty", tok: func(k kind) string { g := good(k); return g[:strings.LastIndexByte(g, '.')+1] }, want: ErrBadSignature},
		{name: "signature with padding", tok: func(k kind) string { return good(k) + "=" }, want: ErrMalformed},
		{name: "signature in std alphabet", tok: func(k kind) string {
			g := []byte(good(k))
			i := strings.LastIndexByte(string(g), '.')
			g[i+1] = '+'
			return string(g)
		}, want: ErrMalformed},
		{name: "payload tampered", tok: func(k kind) string {
			parts := strings.Split(good(k), ".")
			parts[1] = b64(payload(k.aud(), 100*time.Hour, m))
			return strings.Join(parts, ".")
		}, want: ErrBadSignature},
		{name: "payload not JSON", tok: func(kind) string { return handToken(hdr("HS256"), "exp=1", testKey, hs256) }, want: ErrMalformed},
		{name: "payload JSON null", tok: func(kind) string { return handToken(hdr("HS256"), "null", testKey, hs256) }, want: ErrMalformed},
		{name: "payload trailing data", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), time.Hour)+`{"x":1}`, testKey, hs256)
		}, want: ErrMalformed},
		{name: "duplicate exp", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), -time.Hour, `"exp":`+itoa(testNow.Add(time.Hour).Unix())), testKey, hs256)
		}, want: ErrMalformed},
		{name: "exp missing", tok: func(k kind) string { return handToken(hdr("HS256"), `{"aud":"`+k.aud()+`",`+m+`}`, testKey, hs256) }, want: ErrMalformed},
		{name: "exp string", tok: func(k kind) string {
			return handToken(hdr("HS256"), `{"aud":"`+k.aud()+`","exp":"9999999999"}`, testKey, hs256)
		}, want: ErrMalformed},
		{name: "exp bool", tok: func(k kind) string {
			return handToken(hdr("HS256"), `{"aud":"`+k.aud()+`","exp":true}`, testKey, hs256)
		}, want: ErrMalformed},
		{name: "exp null", tok: func(k kind) string {
			return handToken(hdr("HS256"), `{"aud":"`+k.aud()+`","exp":null}`, testKey, hs256)
		}, want: ErrMalformed},
		{name: "exp huge", tok: func(k kind) string {
			return handToken(hdr("HS256"), `{"aud":"`+k.aud()+`","exp":1e300}`, testKey, hs256)
		}, want: ErrMalformed},
		{name: "exp beyond int64", tok: func(k kind) string {
			return handToken(hdr("HS256"), `{"aud":"`+k.aud()+`","exp":99999999999999999999}`, testKey, hs256)
		}, want: ErrMalformed},
		{name: "exp negative", tok: func(k kind) string { return handToken(hdr("HS256"), `{"aud":"`+k.aud()+`","exp":-5}`, testKey, hs256) }, want: ErrExpired},
		{name: "expired", tok: func(k kind) string { return handToken(hdr("HS256"), payload(k.aud(), -time.Hour, m), testKey, hs256) }, want: ErrExpired},
		{name: "exp now-skew-1s", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), -DefaultClockSkew-time.Second), testKey, hs256)
		}, want: ErrExpired},
		{name: "expired and wrong key reports signature", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), -time.Hour), "wrong", hs256)
		}, want: ErrBadSignature},
		{name: "aud missing", tok: func(kind) string {
			return handToken(hdr("HS256"), `{"exp":`+itoa(testNow.Unix()+60)+`}`, testKey, hs256)
		}, want: ErrAudience},
		{name: "aud number", tok: func(kind) string {
			return handToken(hdr("HS256"), `{"aud":1,"exp":`+itoa(testNow.Unix()+60)+`}`, testKey, hs256)
		}, want: ErrMalformed},
		{name: "aud empty", tok: func(kind) string { return handToken(hdr("HS256"), payload("", time.Hour), testKey, hs256) }, want: ErrAudience},
		{name: "aud empty array", tok: func(kind) string {
			return handToken(hdr("HS256"), `{"aud":[],"exp":`+itoa(testNow.Unix()+60)+`}`, testKey, hs256)
		}, want: ErrAudience},
		{name: "aud array without the right value", tok: func(kind) string {
			return handToken(hdr("HS256"), `{"aud":["https://x/client/?hub=other","https://x/api/hubs/other/:send"],"exp":`+itoa(testNow.Unix()+60)+`}`, testKey, hs256)
		}, want: ErrAudience},
		{name: "aud relative", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(strings.TrimPrefix(k.aud(), testEndpoint), time.Hour), testKey, hs256)
		}, want: ErrAudience},
		{name: "aud other scheme", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(strings.Replace(k.aud(), "https", "ftp", 1), time.Hour), testKey, hs256)
		}, want: ErrAudience},
		{name: "aud for another hub", tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(strings.Replace(strings.Replace(k.aud(), "hub=chat", "hub=chat2", 1), "hubs/chat/", "hubs/chat2/", 1), time.Hour), testKey, hs256)
		}, want: ErrAudience},
		{name: "aud for another endpoint kind", tok: func(k kind) string {
			if k == client {
				return handToken(hdr("HS256"), payload(restAud, time.Hour), testKey, hs256)
			}
			return handToken(hdr("HS256"), payload(clientAud, time.Hour), testKey, hs256)
		}, want: ErrAudience},
		{name: "host not allowed", v: &Validator{Keys: []string{testKey}, Now: fixedNow, Hosts: []string{"signalbox.example"}}, tok: good, want: ErrAudience},
		{name: "no keys configured", v: &Validator{Now: fixedNow}, tok: good, want: ErrBadSignature},
		{name: "only an empty key configured", v: &Validator{Keys: []string{""}, Now: fixedNow}, tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), time.Hour), "", hs256)
		}, want: ErrBadSignature},
		{name: "no skew when negative", v: &Validator{Keys: []string{testKey}, Now: fixedNow, ClockSkew: -1}, tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), -time.Second), testKey, hs256)
		}, want: ErrExpired},
		{name: "custom skew", v: &Validator{Keys: []string{testKey}, Now: fixedNow, ClockSkew: 10 * time.Second}, tok: func(k kind) string {
			return handToken(hdr("HS256"), payload(k.aud(), -11*time.Second), testKey, hs256)
		}, want: ErrExpired},
	}
	for _, c := range cases {
		for _, k := range []kind{client, rest} {
			t.Run(c.name+"/"+k.String(), func(t *testing.T) {
				v := c.v
				if v == nil {
					v = newValidator()
				}
				tok := c.tok(k)
				p, err := k.validate(v, tok)
				if c.want == nil {
					if err != nil {
						t.Fatalf("want accepted, got %v", err)
					}
					if p == nil || p.Expires.IsZero() {
						t.Fatalf("principal %+v lacks Expires", p)
					}
					return
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("got error %v, want %v", err, c.want)
				}
				if p != nil {
					t.Fatalf("got principal %+v with an error", p)
				}
				msg := err.Error()
				if tok != "" && strings.Contains(msg, tok) || strings.Contains(msg, marker) ||
					strings.Contains(msg, testKey) || strings.Contains(msg, testKey2) {
					t.Fatalf("error text echoes the token, a claim or a key: %q", msg)
				}
				for _, part := range strings.Split(tok, ".") {
					if len(part) > 8 && strings.Contains(msg, part) {
						t.Fatalf("error text echoes part of the token: %q", msg)
					}
				}
			})
		}
	}
}

func TestValidateClientAudienceForms(t *testing.T) {
	v := newValidator()
	cases := []struct {
		aud, hub string
		ok       bool
	}{
		{"https://foo.service.signalr.net/client/?hub=chat", "chat", true},
		{"https://foo.service.signalr.net/client?hub=chat", "chat", true},
		{"https://foo.service.signalr.net/client/?hub=chat", "Chat", true},
		{"https://foo.service.signalr.net/client/?hub=CHAT", "chat", true},
		{"https://foo.service.signalr.net/client/?hub=chat&asrs_request_id=1", "chat", true},
		{"https://foo.service.signalr.net/client/?x=1&hub=chat", "chat", true},
		{"http://localhost:8888/client/?hub=chat", "chat", true},
		{"http://[::1]:8888/client/?hub=chat", "chat", true},
		{"https://foo.service.signalr.net/client/?hub=app_chat", "app_chat", true},
		{"https://foo.service.signalr.net/client/?hub=ch%61t", "chat", true},
		{"wss://foo.service.signalr.net/client/?hub=chat", "chat", true},
		{"https://foo.service.signalr.net/client/?hub=chat", "", false},
		{"https://foo.service.signalr.net/client/?hub=chat&hub=other", "chat", false},
		{"https://foo.service.signalr.net/client/?hub=chat", "app_chat", false},
		{"https://foo.service.signalr.net/client/", "chat", false},
		{"https://foo.service.signalr.net/client/x?hub=chat", "chat", false},
		{"https://foo.service.signalr.net/prefix/client/?hub=chat", "chat", false},
		{"https://foo.service.signalr.net/?hub=chat", "chat", false},
		{"https://foo.service.signalr.net/client/?hub=%zz", "chat", false},
		{"https://foo.service.signalr.net/client//?hub=chat", "chat", false},
	}
	for _, c := range cases {
		tok := mustToken(t, testKey, TokenOptions{Audience: c.aud})
		_, err := v.ValidateClient(tok, c.hub)
		if c.ok && err != nil {
			t.Errorf("aud %q hub %q: %v", c.aud, c.hub, err)
		}
		if !c.ok && !errors.Is(err, ErrAudience) {
			t.Errorf("aud %q hub %q: got %v, want ErrAudience", c.aud, c.hub, err)
		}
	}
}

func TestValidateRESTAudienceForms(t *testing.T) {
	v := newValidator()
	cases := []struct {
		aud, path string
		ok        bool
	}{
		{"https://h/api/hubs/chat/:send?api-version=2022-06-01", "/api/hubs/chat/:send", true},
		{"https://h/api/hubs/chat/:send", "/api/hubs/chat/:send/", true},
		{"https://h/api/hubs/chat/:send/", "/api/hubs/chat/:send", true},
		{"https://h/api/hubs/chat/:send?api-version=2022-06-01&application=x", "/api/hubs/chat/:send", true},
		{"https://h/api/v1/hubs/chat", "/api/v1/hubs/chat", true},
		{"https://h/api/v1/hubs/chat", "/API/V1/hubs/Chat", false}, // exact: issue 7, found 5
		{"https://h/api/hubs/chat/users/bob/:send", "/api/hubs/chat/users/BOB/:send", false},
		{"https://h/api/hubs/chat/users/a%2Fgroups%2Fadmins", "/api/hubs/chat/users/a/groups/admins", false},
		{"https://h/api/hubs/chat/users/a/groups/admins", "/api/hubs/chat/users/a%2Fgroups%2Fadmins", false},
		{"https://h/api/hubs/chat/users/a%2fb/:send", "/api/hubs/chat/users/a%2Fb/:send", true}, // hex case
		{"https://h/api/hubs/chat/users/%41/:send", "/api/hubs/chat/users/A/:send", true},       // unreserved escape
		{"https://h/api/hubs/chat/users/%61/:send", "/api/hubs/chat/users/A/:send", false},
		{"https://h:443/api/health?api-version=2022-06-01", "/api/health", true},
		{"https://h/api/hubs/chat/users/a%2Fb/:send", "/api/hubs/chat/users/a%2Fb/:send", true},
		{"https://h/api/hubs/chat/users/a%2Fb/:send", "/api/hubs/chat/users/a/b/:send", false},
		{"https://h/api/hubs/chat/users/a%20b/:send", "/api/hubs/chat/users/a b/:send", true},
		{"https://h/api/hubs/chat/:send", "/api/hubs/chat2/:send", false},
		{"https://h/api/hubs/chat2/:send", "/api/hubs/chat/:send", false},
		{"https://h/api/hubs/chat", "/api/hubs/chat/:send", false},
		{"https://h/api/hubs/chat/:send", "/api/hubs/chat", false},
		{"https://h/api/hubs/chat/../other/:send", "/api/hubs/other/:send", false},
		{"https://h/api/hubs/chat/:send#frag", "/api/hubs/chat/:send", true},
		{"https://h/client/?hub=chat", "/client/", true}, // path rule only; REST paths never start /client
	}
	for _, c := range cases {
		tok := mustToken(t, testKey, TokenOptions{Audience: c.aud})
		_, err := v.ValidateREST(tok, c.path)
		if c.ok && err != nil {
			t.Errorf("aud %q path %q: %v", c.aud, c.path, err)
		}
		if !c.ok && !errors.Is(err, ErrAudience) {
			t.Errorf("aud %q path %q: got %v, want ErrAudience", c.aud, c.path, err)
		}
	}
}

// TestKeyRotation follows T5 at unit level: tokens from the old primary work while
// both keys are configured and stop once the old key is removed.
func TestKeyRotation(t *testing.T) {
	oldTok := mustToken(t, "old-primary", TokenOptions{Audience: clientAud})
	newTok := mustToken(t, "new-secondary", TokenOptions{Audience: clientAud})

	both := &Validator{Keys: []string{"old-primary", "new-secondary"}, Now: fixedNow}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := both.ValidateClient(tok, "chat"); err != nil {
			t.Fatalf("during rotation: %v", err)
		}
	}
	after := &Validator{Keys: []string{"new-primary", "new-secondary"}, Now: fixedNow}
	if _, err := after.ValidateClient(oldTok, "chat"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("old key after rotation: got %v, want ErrBadSignature", err)
	}
	if _, err := after.ValidateClient(newTok, "chat"); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
}

func TestValidateHostsAllowList(t *testing.T) {
	v := &Validator{Keys: []string{testKey}, Now: fixedNow, Hosts: []string{"SignalBox.Example:443", "[::1]"}}
	for aud, ok := range map[string]bool{
		"https://signalbox.example/client/?hub=chat":      true,
		"http://signalbox.example:8080/client/?hub=chat":  true,
		"http://[::1]:8888/client/?hub=chat":              true,
		"https://evil.example/client/?hub=chat":           false,
		"https://signalbox.example.evil/client/?hub=chat": false,
	} {
		_, err := v.ValidateClient(mustToken(t, testKey, TokenOptions{Audience: aud}), "chat")
		if ok != (err == nil) {
			t.Errorf("aud %q: err %v, want ok=%v", aud, err, ok)
		}
	}
}

func TestValidateNilValidator(t *testing.T) {
	var v *Validator
	tok := mustToken(t, testKey, TokenOptions{Audience: clientAud})
	if _, err := v.ValidateClient(tok, "chat"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("got %v, want ErrBadSignature", err)
	}
}

func TestPrincipal(t *testing.T) {
	v := newValidator()
	cases := []struct {
		name, payloadExtra, want string
	}{
		{"asrs.s.uid wins", `"sub":"s","nameid":"n","asrs.s.uid":"u"`, "u"},
		{"nameid before sub", `"sub":"s","nameid":"n"`, "n"},
		{"long nameidentifier", `"sub":"s","http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier":"long"`, "long"},
		{"sub last", `"sub":"s"`, "s"},
		{"nameid array takes the first", `"nameid":["a","b"]`, "a"},
		{"empty uid falls back", `"asrs.s.uid":"","nameid":"n"`, "n"},
		{"none", `"role":"admin"`, ""},
	}
	for _, c := range cases {
		tok := handToken(hdr("HS256"), payload(clientAud, time.Hour, c.payloadExtra), testKey, hs256)
		p, err := v.ValidateClient(tok, "chat")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if p.UserID != c.want {
			t.Errorf("%s: UserID %q, want %q", c.name, p.UserID, c.want)
		}
	}
}

func TestPrincipalClaims(t *testing.T) {
	exp := testNow.Add(time.Hour).Unix()
	tok := handToken(hdr("HS256"),
		`{"aud":"`+clientAud+`","exp":`+itoa(exp)+`,"role":["a","b"],"n":1.50,"big":12345678901234567890,"ok":true,"nil":null,"obj":{"x": [1, 2]},"nested":[[1],"s"]}`,
		testKey, hs256)
	p, err := newValidator().ValidateClient(tok, "chat")
	if err != nil {
		t.Fatal(err)
	}
	want := []Claim{
		{"aud", clientAud}, {"exp", itoa(exp)}, {"role", "a"}, {"role", "b"}, {"n", "1.50"},
		{"big", "12345678901234567890"}, {"ok", "true"}, {"nil", ""}, {"obj", `{"x":[1,2]}`},
		{"nested", "[1]"}, {"nested", "s"},
	}
	if len(p.Claims) != len(want) {
		t.Fatalf("claims %v, want %v", p.Claims, want)
	}
	for i := range want {
		if p.Claims[i] != want[i] {
			t.Errorf("claim %d = %v, want %v", i, p.Claims[i], want[i])
		}
	}
	if !p.Expires.Equal(time.Unix(exp, 0)) {
		t.Errorf("Expires %v, want %v", p.Expires, time.Unix(exp, 0))
	}
}

func BenchmarkValidateClient(b *testing.B) {
	v := &Validator{Keys: []string{testKey, testKey2}, Now: fixedNow}
	tok := mustToken(b, testKey2, TokenOptions{Audience: clientAud, UserID: "user-1",
		Claims: []Claim{{"role", "admin"}, {"name", "Ada"}}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.ValidateClient(tok, "chat"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateClientFresh checks a token the Validator has not seen (a new
// client's first connect): signature, header and payload decoding.
func BenchmarkValidateClientFresh(b *testing.B) {
	tok := mustToken(b, testKey2, TokenOptions{Audience: clientAud, UserID: "user-1",
		Claims: []Claim{{"role", "admin"}, {"name", "Ada"}}})
	b.ReportAllocs()
	for b.Loop() {
		v := &Validator{Keys: []string{testKey, testKey2}, Now: fixedNow}
		if _, err := v.ValidateClient(tok, "chat"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateMalformed(b *testing.B) {
	v := &Validator{Keys: []string{testKey}, Now: fixedNow}
	tok := strings.Repeat(".", 100000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.ValidateClient(tok, "chat"); err == nil {
			b.Fatal("accepted")
		}
	}
}

// TestRejectsHugeTokensCheaply is the CVE-2025-30204 regression: a token of 100,000
// dots is refused on its length, with a handful of small allocations.
func TestRejectsHugeTokensCheaply(t *testing.T) {
	v := newValidator()
	for _, tok := range []string{strings.Repeat(".", 100000), strings.Repeat(".", MaxTokenLength)} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := v.ValidateClient(tok, "chat"); err == nil {
				t.Fatal("accepted")
			}
		})
		if allocs > 10 {
			t.Errorf("%d-character token: %v allocations per rejection", len(tok), allocs)
		}
	}
}

func TestValidatorConcurrentUse(t *testing.T) {
	v := newValidator()
	tok := mustToken(t, testKey2, TokenOptions{Audience: clientAud, UserID: "u"})
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var err error
			for range 50 {
				var p *Principal
				if p, err = v.ValidateClient(tok, "chat"); err == nil && p.UserID != "u" {
					err = errors.New("wrong user " + p.UserID)
				}
				if err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("timeout")
		}
	}
}

// A token is verified once and then served from the cache, which still checks the
// audience, the expiry and that the keys are the ones it verified with.
func TestVerifiedTokenCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v := &Validator{Keys: []string{"key-one-0123456789abcdef0123456789"}, Now: func() time.Time { return now }, ClockSkew: -1}
	tok, err := NewToken(v.Keys[0], TokenOptions{Audience: "http://h/api/v1/hubs/chat", Lifetime: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.ValidateREST(tok, "/api/v1/hubs/chat"); err != nil {
		t.Fatal(err)
	}
	if v.restCache.get(tok, v.Keys) == nil {
		t.Fatal("a verified token is not cached")
	}
	if _, err := v.ValidateREST(tok, "/api/v1/hubs/chat"); err != nil {
		t.Fatalf("cached: %v", err)
	}
	if _, err := v.ValidateREST(tok, "/api/v1/hubs/other"); !errors.Is(err, ErrAudience) {
		t.Fatalf("cached token for another path: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := v.ValidateREST(tok, "/api/v1/hubs/chat"); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached token after its expiry: %v", err)
	}
	now = now.Add(-2 * time.Minute)
	v.Keys = []string{"key-two-0123456789abcdef0123456789"}
	if _, err := v.ValidateREST(tok, "/api/v1/hubs/chat"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("cached token after its key was removed: %v", err)
	}
}

func BenchmarkValidateRESTReused(b *testing.B) {
	v := &Validator{Keys: []string{"key-one-0123456789abcdef0123456789"}}
	tok, _ := NewToken(v.Keys[0], TokenOptions{Audience: "http://h/api/v1/hubs/chat/users/u1", Lifetime: time.Hour})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.ValidateREST(tok, "/api/v1/hubs/chat/users/u1"); err != nil {
			b.Fatal(err)
		}
	}
}

// REST callers keep one token per path for its lifetime, so the REST cache holds
// thousands of them; client tokens, presented only at negotiate and connect, are
// held in a smaller cache of their own and cannot push the REST tokens out.
func TestVerifiedTokenCachesPerEndpoint(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v := &Validator{Keys: []string{"key-one-0123456789abcdef0123456789"}, Now: func() time.Time { return now }, ClockSkew: -1}
	sign := func(aud string) string {
		tok, err := NewToken(v.Keys[0], TokenOptions{Audience: aud, Lifetime: time.Hour, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	const users = 2000
	rest := make([]string, users)
	for i := range rest {
		path := fmt.Sprintf("/api/v1/hubs/chat/users/u%d", i)
		rest[i] = sign("http://h" + path)
		if _, err := v.ValidateREST(rest[i], path); err != nil {
			t.Fatal(err)
		}
	}
	for i := range users {
		tok := sign(fmt.Sprintf("http://h/client/?hub=chat&n=%d", i))
		if _, err := v.ValidateClient(tok, "chat"); err != nil {
			t.Fatal(err)
		}
	}
	for i, tok := range rest {
		if v.restCache.get(tok, v.Keys) == nil {
			t.Fatalf("REST token %d of %d was dropped from the cache", i, users)
		}
	}
	if n := len(v.clientCache.m); n > maxCachedClientTokens {
		t.Fatalf("client cache holds %d tokens, more than %d", n, maxCachedClientTokens)
	}
}
