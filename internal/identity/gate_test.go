package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

func TestKeysIssueLookup(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k, err := NewKeys([]string{"primary", "secondary"}, time.Hour, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	id, key, exp := k.Issue("oid-1")
	if !strings.HasPrefix(id, KeyIDPrefix) || !exp.Equal(now.Add(time.Hour)) || key == "" {
		t.Fatalf("Issue = %q %q %v", id, key, exp)
	}
	keys, err := k.Lookup(id)
	if err != nil || len(keys) != 2 || keys[0] != key {
		t.Fatalf("Lookup = %v, %v", keys, err)
	}
	// The secondary access key alone (a node where it became primary) accepts it.
	k2, _ := NewKeys([]string{"secondary"}, time.Hour, func() time.Time { return now })
	if keys2, _ := k2.Lookup(id); len(keys2) != 1 || keys2[0] != keys[1] {
		t.Errorf("secondary-derived key differs")
	}
	// Other access keys derive other keys: a KeyId alone is worth nothing.
	k3, _ := NewKeys([]string{"other"}, time.Hour, func() time.Time { return now })
	if keys3, _ := k3.Lookup(id); keys3[0] == key {
		t.Errorf("key does not depend on the access key")
	}
	_, who, err := ParseKeyID(id)
	if err != nil || who != "oid-1" {
		t.Errorf("ParseKeyID = %q, %v", who, err)
	}
	now = now.Add(time.Hour)
	if _, err := k.Lookup(id); !errors.Is(err, ErrKeyExpired) {
		t.Errorf("expired key: %v", err)
	}
	for _, bad := range []string{"", "sbx-ak1.", "sbx-ak1.12", "sbx-ak1.x.b2lk", "sbx-ak1.012.b2lk", "sbx-ak1.12.", "sbx-ak1.12.***", "kid"} {
		if _, err := k.Lookup(bad); err == nil {
			t.Errorf("Lookup(%q) accepted", bad)
		}
	}
	if _, err := NewKeys(nil, 0, nil); err == nil {
		t.Error("NewKeys without access keys accepted")
	}
}

func FuzzParseKeyID(f *testing.F) {
	k, _ := NewKeys([]string{"a"}, 0, nil)
	id, _, _ := k.Issue("some-oid")
	for _, s := range []string{id, "sbx-ak1.1.eA", "sbx-ak1.", "x", "sbx-ak1.99999999999999.eA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exp, who, err := ParseKeyID(s)
		if err != nil {
			return
		}
		if exp.Unix() <= 0 || who == "" {
			t.Fatalf("ParseKeyID(%q) = %v %q", s, exp, who)
		}
		// What parses, re-encodes to itself (one spelling per KeyId).
		k := &Keys{secrets: [][]byte{{1}}, lifetime: time.Until(exp), now: time.Now}
		if again, _, _ := k.Issue(who); strings.SplitN(again, ".", 3)[2] != strings.SplitN(s, ".", 3)[2] {
			t.Fatalf("identity of %q re-encodes as %q", s, again)
		}
	})
}

// TestGate: which token goes where, with and without local auth.
func TestGate(t *testing.T) {
	p, _ := startProvider(t, "ES256")
	v := newVerifier(t, p.Issuer(), UserAssigned("app").ClientID)
	keys, err := NewKeys([]string{"access-key"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const endpoint = "http://localhost:8888"
	for _, disable := range []bool{false, true} {
		g := &Gate{Local: &auth.Validator{Keys: []string{"access-key"}}, DisableLocalAuth: disable, Verifier: v, Keys: keys}
		local, _ := auth.NewToken("access-key", auth.TokenOptions{Audience: auth.ClientAudience(endpoint, "chat")})
		localREST, _ := auth.NewToken("access-key", auth.TokenOptions{Audience: auth.RESTAudience(endpoint, "/api/hubs/chat/:send")})
		_, err := g.ValidateClient(local, "chat")
		if disable != errors.Is(err, ErrLocalAuthDisabled) || (!disable && err != nil) {
			t.Errorf("disable=%v: access-key client token: %v", disable, err)
		}
		err = g.AuthenticateREST(ctx, localREST, "/api/hubs/chat/:send")
		if disable != errors.Is(err, ErrLocalAuthDisabled) || (!disable && err != nil) {
			t.Errorf("disable=%v: access-key REST token: %v", disable, err)
		}

		entra, _, _ := p.Token(UserAssigned("app"), DefaultAudience)
		if err := g.AuthenticateREST(ctx, entra, "/api/hubs/chat/:send"); err != nil {
			t.Errorf("disable=%v: identity REST token: %v", disable, err)
		}
		stranger, _, _ := p.Token(UserAssigned("stranger"), DefaultAudience)
		if err := g.AuthenticateREST(ctx, stranger, "/api/hubs/chat/:send"); !errors.Is(err, auth.ErrForbidden) {
			t.Errorf("disable=%v: stranger on REST: %v", disable, err)
		}
		if _, _, _, err := g.AccessKey(ctx, stranger); !errors.Is(err, auth.ErrForbidden) {
			t.Errorf("disable=%v: stranger's access key: %v", disable, err)
		}
		if _, _, _, err := g.AccessKey(ctx, localREST); !errors.Is(err, ErrIdentityRequired) {
			t.Errorf("disable=%v: access key with an access-key token: %v", disable, err)
		}
		// An identity token is not a client token.
		if _, err := g.ValidateClient(entra, "chat"); err == nil {
			t.Errorf("disable=%v: identity token accepted as a client token", disable)
		}

		kid, key, _, err := g.AccessKey(ctx, entra)
		if err != nil {
			t.Fatalf("disable=%v: access key: %v", disable, err)
		}
		signed, _ := auth.NewToken(key, auth.TokenOptions{Audience: auth.ClientAudience(endpoint, "chat"), KeyID: kid, UserID: "u1"})
		pr, err := g.ValidateClient(signed, "chat")
		if err != nil || pr.UserID != "u1" {
			t.Errorf("disable=%v: token signed with the derived key: %v %+v", disable, err, pr)
		}
		// The derived key without its kid is an unknown access key; the access key
		// with a derived kid is not the derived key.
		noKid, _ := auth.NewToken(key, auth.TokenOptions{Audience: auth.ClientAudience(endpoint, "chat")})
		if _, err := g.ValidateClient(noKid, "chat"); err == nil {
			t.Errorf("disable=%v: derived key accepted without its kid", disable)
		}
		wrongKey, _ := auth.NewToken("access-key", auth.TokenOptions{Audience: auth.ClientAudience(endpoint, "chat"), KeyID: kid})
		if _, err := g.ValidateClient(wrongKey, "chat"); !errors.Is(err, auth.ErrBadSignature) {
			t.Errorf("disable=%v: access key under a derived kid: %v", disable, err)
		}
		// A derived-key token is not a REST token.
		restSigned, _ := auth.NewToken(key, auth.TokenOptions{Audience: auth.RESTAudience(endpoint, "/api/hubs/chat/:send"), KeyID: kid})
		if err := g.AuthenticateREST(ctx, restSigned, "/api/hubs/chat/:send"); err == nil {
			t.Errorf("disable=%v: derived key accepted on REST", disable)
		}
		// What the service signs itself is accepted on the client endpoints.
		sk, skid := g.SigningKey()
		own, _ := auth.NewToken(sk, auth.TokenOptions{Audience: auth.ClientAudience(endpoint, "chat"), KeyID: skid})
		if _, err := g.ValidateClient(own, "chat"); err != nil {
			t.Errorf("disable=%v: the service's own token: %v", disable, err)
		}
	}
}
