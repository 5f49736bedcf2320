package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// anyAuthError reports whether err is one of the package's sentinels.
func anyAuthError(err error) bool {
	for _, s := range []error{ErrNoToken, ErrTokenTooLong, ErrBadSignature, ErrExpired, ErrAudience, ErrAlgorithm, ErrMalformed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func checkOutcome(t *testing.T, tok string, p *Principal, err error) {
	t.Helper()
	if err != nil {
		if p != nil {
			t.Fatalf("principal with error %v", err)
		}
		if !anyAuthError(err) {
			t.Fatalf("error %v is not a package sentinel", err)
		}
		if len(tok) >= 8 && strings.Contains(err.Error(), tok) {
			t.Fatalf("error echoes the token: %v", err)
		}
		return
	}
	if p == nil || len(tok) > MaxTokenLength {
		t.Fatalf("accepted %d-character token with principal %v", len(tok), p)
	}
}

// FuzzValidate feeds arbitrary strings as tokens, hubs and paths: never a panic, only
// sentinel errors, never the token in an error.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		"", ".", "..", "...", "a.b.c", strings.Repeat(".", 5000),
		mustToken(f, testKey, TokenOptions{Audience: clientAud, UserID: "u", Claims: []Claim{{"role", "a"}, {"role", "b"}}}),
		mustToken(f, testKey2, TokenOptions{Audience: restAud, Algorithm: "HS512"}),
		handToken(hdr("none"), payload(clientAud, time.Hour), "", nil),
		handToken(`{"alg":"HS256","crit":["b64"]}`, payload(clientAud, time.Hour), testKey, hs256),
		handToken(hdr("HS256"), `{"aud":[1,{"a":null}],"exp":1e400}`, testKey, hs256),
	} {
		f.Add(s, "chat", restPath)
	}
	v := newValidator()
	f.Fuzz(func(t *testing.T, tok, hub, path string) {
		p, err := v.ValidateClient(tok, hub)
		checkOutcome(t, tok, p, err)
		p, err = v.ValidateREST(tok, path)
		checkOutcome(t, tok, p, err)
	})
}

// FuzzValidateSigned signs arbitrary header and payload JSON with a configured key, so
// the fuzzer gets past the signature into header checks, exp, aud and claims.
func FuzzValidateSigned(f *testing.F) {
	f.Add(hdr("HS256"), payload(clientAud, time.Hour, `"asrs.s.uid":"u","role":["a",1,true,null,{"x":[]}]`))
	f.Add(hdr("HS512"), payload(restAud, time.Hour, `"nameid":["n"]`))
	f.Add(`{"alg":"HS256","alg":"HS256"}`, `{"aud":["`+clientAud+`"],"exp":1.5e10}`)
	f.Add(hdr("HS256"), `{"aud":"https://h/client/?hub=chat&hub=x","exp":-1e308,"exp":2}`)
	f.Add(hdr("HS256"), `{"aud":"http://[::1/client?hub=chat","exp":"1"}`)
	v := newValidator()
	f.Fuzz(func(t *testing.T, header, pl string) {
		h := hs256
		if strings.Contains(header, "HS512") {
			h = hs512
		}
		tok := handToken(header, pl, testKey, h)
		p, err := v.ValidateClient(tok, "chat")
		checkOutcome(t, tok, p, err)
		if err == nil {
			for _, c := range p.Claims {
				if c.Type == "" && !strings.Contains(pl, `""`) {
					t.Fatalf("empty claim type from %q", pl)
				}
			}
		}
		p, err = v.ValidateREST(tok, restPath)
		checkOutcome(t, tok, p, err)
	})
}

// FuzzTokenRoundTrip mints tokens from arbitrary user ids and claims and checks that
// validation gives them back.
func FuzzTokenRoundTrip(f *testing.F) {
	f.Add("user-1", "role", "admin", "Chat")
	f.Add("", "sub", "s", "app_hub")
	f.Add("ü\x00\"", "aud", "\u2028", "x")
	v := newValidator()
	f.Fuzz(func(t *testing.T, uid, ctype, cval, hub string) {
		// Hub names are ASCII by the service's naming rule; Unicode case mapping is
		// not a round trip, so non-ASCII hubs are out of scope here.
		if hub == "" || ctype == "" || strings.IndexFunc(hub, func(r rune) bool { return r >= 0x80 }) >= 0 {
			return
		}
		tok, err := NewToken(testKey, TokenOptions{Audience: ClientAudience(testEndpoint, hub), UserID: uid,
			Claims: []Claim{{ctype, cval}}, Now: fixedNow})
		if err != nil {
			if errors.Is(err, ErrTokenTooLong) {
				return
			}
			t.Fatalf("NewToken: %v", err)
		}
		p, err := v.ValidateClient(tok, hub)
		if err != nil {
			t.Fatalf("round trip for hub %q: %v", hub, err)
		}
		if uid != "" && p.UserID != uid && !isValidUTF8Lossy(uid) {
			t.Fatalf("UserID %q, want %q", p.UserID, uid)
		}
	})
}

// isValidUTF8Lossy reports whether s changes when it goes through JSON (invalid UTF-8
// becomes U+FFFD), in which case the user id cannot come back byte for byte.
func isValidUTF8Lossy(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") != s
}

// FuzzTokenFromRequest: arbitrary queries and Authorization headers never panic, and
// a returned token is trimmed and comes from one of them.
func FuzzTokenFromRequest(f *testing.F) {
	f.Add("hub=chat&access_token=abc", "Bearer xyz")
	f.Add("access_token=%zz&access_token=ok", "")
	f.Add(";access_token=a;b", "bearer")
	f.Fuzz(func(t *testing.T, rawQuery, authz string) {
		r := &http.Request{URL: &url.URL{Path: "/client/", RawQuery: rawQuery}, Header: http.Header{}}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		got := TokenFromRequest(r)
		if got != strings.TrimSpace(got) {
			t.Fatalf("untrimmed token %q", got)
		}
		if got != "" && !strings.Contains(authz, got) {
			q, _ := url.ParseQuery(rawQuery)
			found := false
			for _, v := range q["access_token"] {
				found = found || strings.TrimSpace(v) == got
			}
			if !found {
				t.Fatalf("token %q from neither header %q nor query %q", got, authz, rawQuery)
			}
		}
	})
}

// FuzzVerifyUpstreamSignature: arbitrary headers never panic, and what
// UpstreamSignature produces always verifies.
func FuzzVerifyUpstreamSignature(f *testing.F) {
	f.Add("sha256=00,sha256=", "conn-1")
	f.Add(",,, sha256=ZZ ,", "")
	f.Fuzz(func(t *testing.T, header, connID string) {
		keys := []string{testKey, testKey2}
		VerifyUpstreamSignature(header, keys, connID)
		if !VerifyUpstreamSignature(UpstreamSignature(keys, connID), keys, connID) {
			t.Fatalf("own signature of %q does not verify", connID)
		}
		if !VerifyUpstreamSignature(header+","+UpstreamSignature(keys[1:], connID), keys[:1], connID) &&
			VerifyUpstreamSignature(header, keys[:1], connID) {
			t.Fatal("appending an entry turned a match into a mismatch")
		}
	})
}

// FuzzDecodeObject checks the claims scanner against encoding/json: the same members
// with the same values, and an error exactly when encoding/json fails or a name
// repeats.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 , "b":[1,{"c":"]}"}], "d":"\"}" } `, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`,
		`[1]`, `"s"`, `{"a":}`, `{"a":1}x`, `{"é":"\ud800","x":null,"y":true,"z":-1.5e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		names, values, err := decodeObject(data)
		var m map[string]json.RawMessage
		jerr := json.Unmarshal(data, &m)
		if jerr != nil || m == nil {
			if err == nil {
				t.Fatalf("scanner accepted what encoding/json refuses: %q", data)
			}
			return
		}
		if err != nil {
			if len(m) == len(names) || !strings.Contains(err.Error(), "duplicate") {
				t.Fatalf("scanner refused valid object %q: %v", data, err)
			}
			return
		}
		if len(names) != len(m) {
			t.Fatalf("%d members, encoding/json has %d", len(names), len(m))
		}
		for i, n := range names {
			if !bytes.Equal(values[i], m[n]) {
				t.Fatalf("member %q: %q, encoding/json %q", n, values[i], m[n])
			}
			if s, ok := jsonString(values[i]); ok {
				var want string
				if json.Unmarshal(values[i], &want) != nil || s != want {
					t.Fatalf("string %q decoded as %q, want %q", values[i], s, want)
				}
			}
			if elems, ok := jsonArray(values[i]); ok {
				var want []json.RawMessage
				if json.Unmarshal(values[i], &want) != nil || len(want) != len(elems) {
					t.Fatalf("array %q: %d elements, encoding/json %d", values[i], len(elems), len(want))
				}
				for j := range want {
					if !bytes.Equal(elems[j], want[j]) {
						t.Fatalf("array %q element %d: %q, want %q", values[i], j, elems[j], want[j])
					}
				}
			}
		}
	})
}

// FuzzNormalizePath: the REST audience comparison's normal form never panics, is
// stable (normalizing it again, with the one trailing '/' the form drops, gives it
// back; "//" is the seed that showed the form drops only one), and never turns an
// escaped delimiter into the delimiter (a%2Fb stays apart from a/b).
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/api/hubs/chat/users/a%2Fb/:send", "/a%2fb%41%", "/%zz/%4", "/x/", "users/bob", "/%25%2F/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := normalizePath(p)
		if again := normalizePath(n + "/"); again != n {
			t.Fatalf("not stable: %q -> %q -> %q", p, n, again)
		}
		if strings.Count(strings.TrimSuffix(p, "/"), "/") != strings.Count(n, "/") {
			t.Fatalf("segments changed: %q -> %q", p, n)
		}
	})
}
