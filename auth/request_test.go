package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestTokenFromRequest(t *testing.T) {
	cases := []struct {
		name   string
		target string
		auth   []string
		want   string
	}{
		{"none", "/client/?hub=chat", nil, ""},
		{"bearer", "/client/?hub=chat", []string{"Bearer abc"}, "abc"},
		{"bearer lower case", "/", []string{"bearer abc"}, "abc"},
		{"bearer upper case, spaces", "/", []string{"  BEARER   abc  "}, "abc"},
		{"bearer tab", "/", []string{"Bearer\tabc"}, "abc"},
		{"bearer without token falls back to the query", "/?access_token=q", []string{"Bearer "}, "q"},
		{"bearerabc is not bearer", "/?access_token=q", []string{"Bearerabc"}, "q"},
		{"basic falls back to the query", "/?access_token=q", []string{"Basic dXNlcjpwYXNz"}, "q"},
		{"second header is bearer", "/", []string{"Basic x", "Bearer abc"}, "abc"},
		{"header wins over query", "/?access_token=q", []string{"Bearer h"}, "h"},
		{"query", "/client/?hub=chat&access_token=q", nil, "q"},
		{"last query value", "/client/?access_token=first&hub=chat&access_token=last", nil, "last"},
		{"last non-empty query value", "/?access_token=first&access_token=", nil, "first"},
		{"query escaped", "/?access_token=a%2Eb%2Ec", nil, "a.b.c"},
		{"empty query value", "/?access_token=", nil, ""},
		{"other key only", "/?my_access_token=q", nil, ""},
		{"escaped key", "/?access%5Ftoken=q", nil, "q"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, c.target, nil)
		for _, h := range c.auth {
			r.Header.Add("Authorization", h)
		}
		if got := TokenFromRequest(r); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	if TokenFromRequest(nil) != "" {
		t.Error("nil request")
	}
	if TokenFromRequest(&http.Request{Header: http.Header{}}) != "" {
		t.Error("request without URL")
	}
}

func TestUserClaims(t *testing.T) {
	in := []Claim{
		{"aud", "a"}, {"exp", "1"}, {"iat", "1"}, {"nbf", "1"}, {"iss", "i"}, {"jti", "j"}, {"typ", "t"},
		{"nonce", "n"}, {"asrs.s.uid", "u"}, {"asrs.s.derror", "True"}, {"asrs.s.", "x"},
		{"sub", "s"}, {"nameid", "n"}, {"role", "r1"}, {"role", "r2"}, {"asrs.u.aud", "mine"},
		{"asrs.u.sub", "s2"}, {"asrs.u.", "dropped"}, {"name", "a,b=c d"},
	}
	want := []Claim{{"sub", "s"}, {"nameid", "n"}, {"role", "r1"}, {"role", "r2"}, {"aud", "mine"}, {"sub", "s2"}, {"name", "a,b=c d"}}
	got := UserClaims(in)
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("claim %d = %v, want %v", i, got[i], want[i])
		}
	}
	if got := UserClaims(nil); len(got) != 0 {
		t.Errorf("nil: %v", got)
	}
}

// FuzzQueryToken checks queryToken against what TokenFromRequest did before it: the
// last non-empty access_token value of url.URL.Query().
func FuzzQueryToken(f *testing.F) {
	for _, q := range []string{
		"access_token=a.b.c", "hub=chat&id=x&access_token=t1&access_token=t2", "access_token=t&access_token=%20",
		"access%5Ftoken=x", "access_token=a%zz&access_token=b", "access_token=a;b&access_token=c", "&&access_token=+x+&",
		"access_token", "access_token=", "x=%&access_token=y", strings.Repeat("&", 10000) + "access_token=z",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u := url.URL{RawQuery: raw}
		want := ""
		vs := u.Query()["access_token"]
		for i := len(vs) - 1; i >= 0; i-- {
			if tok := strings.TrimSpace(vs[i]); tok != "" {
				want = tok
				break
			}
		}
		if got := queryToken(raw); got != want {
			t.Fatalf("queryToken(%q) = %q, want %q", raw, got, want)
		}
	})
}
