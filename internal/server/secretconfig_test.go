package server

import (
	"strings"
	"testing"
)

// A config error names the setting but never repeats a password or a function key
// found in a URL: startup errors end up in collected logs.
func TestConfigErrorsHideURLSecrets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"redis scheme", func(c *Config) { c.RedisURL = "http://:s3cret@cache:6379" }},
		{"redis parse", func(c *Config) { c.RedisURL = "redis://user:s3cret@cache:port" }},
		{"redis host", func(c *Config) { c.RedisURL = "redis://:s3cret@/0" }},
		{"upstream scheme", func(c *Config) { c.Upstream = StringList{"ftp://fn/api?code=s3cret"} }},
		{"upstream parse", func(c *Config) { c.Upstream = StringList{"http://fn:port/api?code=s3cret"} }},
		{"upstreams rule", func(c *Config) { c.Upstreams = []UpstreamRule{{URL: "//fn/api?code=s3cret"}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fastConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error reveals the secret: %v", err)
			}
		})
	}
}
