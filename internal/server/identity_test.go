package server

import (
	"strings"
	"testing"
)

func TestIdentityConfig(t *testing.T) {
	env := map[string]string{
		"SIGNALBOX_IDENTITY_ISSUER":    "http://127.0.0.1:8889",
		"SIGNALBOX_IDENTITY_ALLOW":     " a , b ,,",
		"SIGNALBOX_DISABLE_LOCAL_AUTH": "true",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.IdentityIssuer != "http://127.0.0.1:8889" || !c.DisableLocalAuth || strings.Join(c.IdentityAllow, "|") != "a|b" {
		t.Fatalf("from env: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.IdentityIssuer = "" }, "disable-local-auth: needs identity-issuer"},
		{func(c *Config) {
			c.IdentityIssuer, c.DisableLocalAuth, c.IdentityAllow = "", false, nil
			c.IdentityAudience = "x"
		}, "identity-audience: needs"},
		{func(c *Config) { c.IdentityIssuer = "ftp://x" }, "identity-issuer"},
		{func(c *Config) { c.IdentityIssuer = "http://x/?q=1" }, "query"},
	} {
		bad := c
		tc.mod(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want error %q, got %v", tc.want, err)
		}
	}
	yaml := "identity-issuer: http://h:1\nidentity-allow: [x, y]\ndisable-local-auth: true\nidentity-audience: api://a\n"
	f := Default()
	if err := f.ParseFile([]byte(yaml)); err != nil || f.IdentityAudience != "api://a" || len(f.IdentityAllow) != 2 || !f.DisableLocalAuth {
		t.Fatalf("from file: %+v %v", f, err)
	}
}
