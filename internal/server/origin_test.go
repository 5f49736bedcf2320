package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/signalbox-io/signalbox/auth"
)

func TestOriginPolicyAllows(t *testing.T) {
	list := []string{"https://app.example.com", "http://localhost:3000", "https://*.Example.org", "http://[::1]:8080"}
	cases := []struct {
		origin string
		want   bool
	}{
		{"", true}, // no Origin header: not a browser
		{"https://app.example.com", true},
		{"HTTPS://APP.Example.COM", true},
		{"https://app.example.com:443", true},
		{"https://app.example.com:8443", false},
		{"http://app.example.com", false},
		{"https://app.example.com.evil.test", false},
		{"https://evilapp.example.com", false},
		{"https://app.example.com/", false}, // not a serialized origin
		{"http://localhost:3000", true},
		{"http://localhost", false},
		{"http://localhost:80", false},
		{"https://a.example.org", true},
		{"https://a.b.example.org:443", true},
		{"https://example.org", false},
		{"https://badexample.org", false},
		{"http://a.example.org", false},
		{"http://[::1]:8080", true},
		{"null", false},
		{"file://", false},
		{"https://user@app.example.com", false},
		{"https://app.example.com:99999", false},
		{"%zz", false},
	}
	p, err := newOriginPolicy(list)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := p.allows(c.origin); got != c.want {
			t.Errorf("allows(%q) = %v, want %v", c.origin, got, c.want)
		}
	}
	for _, l := range [][]string{nil, {"*"}, {"https://x.test", "*"}} {
		p, err := newOriginPolicy(l)
		if err != nil {
			t.Fatal(err)
		}
		if !p.allows("https://anything.test") || !p.allows("null") {
			t.Errorf("%q: any origin must be allowed", l)
		}
	}
	p, err = newOriginPolicy([]string{"http://x.test:80"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.allows("http://x.test") {
		t.Error("a default port in the entry must match an origin without one")
	}
}

func TestParseOriginPatternErrors(t *testing.T) {
	for _, s := range []string{
		"", "app.example.com", "ftp://x.test", "https://", "https://x.test/", "https://x.test/path",
		"https://x.test?q", "https://x.test#f", "https://u:p@x.test", "https://x.test:0", "https://x.test:abc",
		"https://x.test:", "https://a.*.x.test", "https://*", "https://*.", "*.x.test", "https://*.127.0.0.1", "**",
	} {
		if _, err := parseOriginPattern(s); err == nil {
			t.Errorf("parseOriginPattern(%q): no error", s)
		} else if !strings.Contains(err.Error(), "scheme://host[:port]") {
			t.Errorf("parseOriginPattern(%q): unclear error %v", s, err)
		}
	}
}

func FuzzOriginPolicy(f *testing.F) {
	f.Add("https://*.example.com", "https://a.example.com")
	f.Add("http://localhost:3000", "HTTP://LOCALHOST:3000")
	f.Add("https://x.test:443", "https://x.test")
	f.Add("*", "null")
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		p, err := newOriginPolicy([]string{pattern})
		if err != nil {
			return
		}
		_ = p.allows(origin)
		if !strings.Contains(pattern, "*") && !p.allows(pattern) {
			t.Fatalf("%q does not allow itself", pattern)
		}
	})
}

// TestAllowedOrigins checks every endpoint family with an allowed Origin, a
// refused one and none.
func TestAllowedOrigins(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.AllowedOrigins = StringList{"https://app.example", "https://*.trusted.test"}
	})
	const good, evil = "https://app.example:443", "https://evil.test"
	tok := ts.token("chat", "")
	restTok := restToken(t, ts, "/api/hubs/chat/:send")
	type call struct {
		name, method, path, tok string
		hdr                     map[string]string
		ok                      int
	}
	calls := []call{
		{"negotiate", "POST", "/client/negotiate?hub=chat", tok, nil, 200},
		{"preflight", "OPTIONS", "/client/negotiate?hub=chat", "", map[string]string{"Access-Control-Request-Method": "POST"}, 204},
		{"rest preflight", "OPTIONS", "/api/hubs/chat/:send", "", map[string]string{"Access-Control-Request-Method": "POST"}, 204},
		{"rest", "POST", "/api/hubs/chat/:send", restTok, map[string]string{"Content-Type": "application/json"}, 202},
	}
	for _, c := range calls {
		for _, origin := range []string{good, "https://a.trusted.test", evil, ""} {
			hdr := map[string]string{}
			for k, v := range c.hdr {
				hdr[k] = v
			}
			if origin != "" {
				hdr["Origin"] = origin
			}
			var body *strings.Reader
			if c.name == "rest" {
				body = strings.NewReader(`{"target":"t","arguments":[]}`)
			} else {
				body = strings.NewReader("")
			}
			resp := ts.do(c.method, c.path, c.tok, body, hdr)
			acao := resp.Header.Get("Access-Control-Allow-Origin")
			if origin == evil {
				if resp.StatusCode != 403 || acao != "" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
					t.Errorf("%s from %s: %d %v, want 403 without CORS headers", c.name, origin, resp.StatusCode, resp.Header)
				}
				continue
			}
			if resp.StatusCode != c.ok || acao != origin {
				t.Errorf("%s from %q: %d, Allow-Origin %q", c.name, origin, resp.StatusCode, acao)
			}
			if origin != "" && resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
				t.Errorf("%s from %q: no Allow-Credentials", c.name, origin)
			}
		}
	}

	// Long polling: requests from a refused origin are 403 before they can drain or
	// send anything; the allowed origin and a client without Origin go on.
	n := ts.negotiate("chat", "")
	poll := "/client/?hub=chat&id=" + n.ConnectionToken
	handshake := func() *strings.Reader { return strings.NewReader(`{"protocol":"json","version":1}` + "\x1e") }
	for _, step := range []struct {
		method, origin string
		body           *strings.Reader
		status         int
	}{
		{"GET", evil, nil, 403},
		{"GET", good, nil, 200},
		{"POST", evil, handshake(), 403},
		{"POST", good, handshake(), 200},
		{"GET", "", nil, 200},
	} {
		hdr := map[string]string{}
		if step.origin != "" {
			hdr["Origin"] = step.origin
		}
		var resp *http.Response
		if step.body != nil {
			resp = ts.do(step.method, poll, tok, step.body, hdr)
		} else {
			resp = ts.do(step.method, poll, tok, nil, hdr)
		}
		body := readBody(t, resp)
		if resp.StatusCode != step.status {
			t.Fatalf("long polling %s from %q: %d %s", step.method, step.origin, resp.StatusCode, body)
		}
		if step.method == "GET" && step.origin == "" && !strings.Contains(body, "{}") {
			t.Fatalf("poll after the handshake: %q, want the handshake response", body)
		}
	}

	// WebSocket upgrade.
	dial := func(origin string) (int, error) {
		n := ts.negotiate("chat", "")
		u := strings.Replace(ts.url, "http://", "ws://", 1) + "/client/?hub=chat&id=" + n.ConnectionToken + "&access_token=" + tok
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
		if origin != "" {
			opts.HTTPHeader.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, u, opts)
		if c != nil {
			c.CloseNow()
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	for _, c := range []struct {
		origin string
		status int
	}{{good, 101}, {"https://B.Trusted.Test", 101}, {"", 101}, {evil, 403}, {"null", 403}} {
		status, err := dial(c.origin)
		if status != c.status {
			t.Errorf("WebSocket upgrade from %q: status %d (%v), want %d", c.origin, status, err, c.status)
		}
	}
}

func TestAllowedOriginsDefaultReflectsAny(t *testing.T) {
	ts := startServer(t, nil)
	resp := ts.do("OPTIONS", "/client/negotiate?hub=chat", "", nil, map[string]string{"Origin": "https://evil.test"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://evil.test" {
		t.Fatalf("default must allow any origin: %d %v", resp.StatusCode, resp.Header)
	}
}

func restToken(t *testing.T, ts *testServer, path string) string {
	t.Helper()
	tok, err := auth.NewToken(testKey, auth.TokenOptions{Audience: auth.RESTAudience(ts.url, path)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAllowedOriginsConfig(t *testing.T) {
	file := writeFile(t, "allowed-origins: [\"https://file.test\", \"https://*.file.test\"]\n")
	env := map[string]string{"SIGNALBOX_CONFIG": file}
	cfg, err := Load(envMap(env), nil)
	if err != nil || len(cfg.AllowedOrigins) != 2 || cfg.AllowedOrigins[1] != "https://*.file.test" {
		t.Fatalf("file: %v %q", err, cfg.AllowedOrigins)
	}
	env["SIGNALBOX_ALLOWED_ORIGINS"] = " https://env.test , http://localhost:3000,"
	cfg, err = Load(envMap(env), nil)
	if err != nil || len(cfg.AllowedOrigins) != 2 || cfg.AllowedOrigins[0] != "https://env.test" || cfg.AllowedOrigins[1] != "http://localhost:3000" {
		t.Fatalf("env over file: %v %q", err, cfg.AllowedOrigins)
	}
	cfg, err = Load(envMap(env), map[string][]string{"allowed-origins": {"https://flag.test", "*"}})
	if err != nil || len(cfg.AllowedOrigins) != 2 || cfg.AllowedOrigins[0] != "https://flag.test" || cfg.AllowedOrigins[1] != "*" {
		t.Fatalf("flag over env: %v %q", err, cfg.AllowedOrigins)
	}
	cfg, err = Load(nil, nil)
	if err != nil || len(cfg.AllowedOrigins) != 0 {
		t.Fatalf("default: %v %q", err, cfg.AllowedOrigins)
	}
	_, err = Load(nil, map[string][]string{"allowed-origins": {"https://ok.test", "example.com/path"}})
	if err == nil || !strings.Contains(err.Error(), "allowed-origins: entry 2:") || !strings.Contains(err.Error(), `"example.com/path"`) {
		t.Fatalf("bad entry: %v", err)
	}
}
