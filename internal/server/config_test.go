package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "signalbox.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, `
listen: "file:1"
access-key: [file-primary, file-secondary]
upstream: "http://file/{hub}"
upstreams:
  - url: "http://rule/{event}"
    hub: chat
    category: messages
    event: "a, b"
public-url: "https://file.example"
redis-url: "redis://file:6379/0"
node-id: file-node
keep-alive-interval: 5s
`)
	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"default", nil, nil, func(t *testing.T, c Config) {
			if c.Listen != "localhost:8888" || len(c.AccessKeys) != 0 || c.KeepAliveInterval != 15*time.Second {
				t.Fatalf("%+v", c)
			}
		}},
		{"file over default", []string{"--config", file}, nil, func(t *testing.T, c Config) {
			if c.Listen != "file:1" || len(c.AccessKeys) != 2 || c.AccessKeys[1] != "file-secondary" || c.NodeID != "file-node" ||
				c.KeepAliveInterval != 5*time.Second || c.ClientTimeout != 30*time.Second {
				t.Fatalf("%+v", c)
			}
			rules := c.Rules()
			if len(rules) != 2 || rules[0].URLTemplate != "http://file/{hub}" || rules[0].HubPattern != "*" ||
				rules[1].HubPattern != "chat" || rules[1].EventPattern != "a, b" {
				t.Fatalf("rules %+v", rules)
			}
		}},
		{"config file from the environment", nil, map[string]string{EnvConfig: file}, func(t *testing.T, c Config) {
			if c.Listen != "file:1" {
				t.Fatalf("%+v", c)
			}
		}},
		{"env over file", []string{"--config", file}, map[string]string{
			EnvListen: "env:2", EnvAccessKey: "k1, k2", EnvUpstream: "http://e1/{hub} http://e2/x",
			EnvPublicURL: "http://env.example", EnvRedisURL: "redis://env:1/2", EnvNodeID: "env-node",
		}, func(t *testing.T, c Config) {
			if c.Listen != "env:2" || strings.Join(c.AccessKeys, "|") != "k1|k2" || strings.Join(c.Upstream, "|") != "http://e1/{hub}|http://e2/x" ||
				c.PublicURL != "http://env.example" || c.RedisURL != "redis://env:1/2" || c.NodeID != "env-node" {
				t.Fatalf("%+v", c)
			}
		}},
		{"flag over env", []string{"--config", file, "--listen", "flag:3", "--access-key", "f1", "--access-key", "f2",
			"--upstream", "http://flag/{hub}", "--public-url", "http://flag.example", "--redis-url", "redis://flag:1",
			"--node-id", "flag-node"},
			map[string]string{EnvListen: "env:2", EnvAccessKey: "k1", EnvUpstream: "http://e1/", EnvNodeID: "env-node"},
			func(t *testing.T, c Config) {
				if c.Listen != "flag:3" || strings.Join(c.AccessKeys, "|") != "f1|f2" || strings.Join(c.Upstream, "|") != "http://flag/{hub}" ||
					c.PublicURL != "http://flag.example" || c.RedisURL != "redis://flag:1" || c.NodeID != "flag-node" {
					t.Fatalf("%+v", c)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := LoadConfig(c.args, envMap(c.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		file string
		want string
	}{
		{"bad listen", []string{"--listen", "nope"}, "", "listen"},
		{"bad port", []string{"--listen", "h:99999"}, "", "listen"},
		{"bad upstream", []string{"--upstream", "not a url {hub}"}, "", "upstream"},
		{"relative upstream", []string{"--upstream", "/runtime/webhooks/signalr"}, "", "upstream"},
		{"bad public url", []string{"--public-url", "ftp://x"}, "", "public-url"},
		{"bad redis url", []string{"--redis-url", "http://x"}, "", "redis-url"},
		{"bad node id", []string{"--node-id", "a b"}, "", "node-id"},
		{"empty key", []string{"--access-key", ""}, "", "access-key"},
		{"unknown file key", nil, "lisen: x\n", "lisen"},
		{"bad duration", nil, "client-timeout: soon\n", "line 1: cannot unmarshal !!str `soon` into time.Duration"},
		{"negative duration", nil, "poll-timeout: -1s\n", "poll-timeout"},
		{"rule without url", nil, "upstreams: [{hub: chat}]\n", "url is required"},
		{"not yaml", nil, "listen: [\n", "config"},
		{"unknown flag", []string{"--bogus"}, "", "bogus"},
		{"stray argument", []string{"extra"}, "", "extra"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.file != "" {
				args = append(args, "--config", writeFile(t, c.file))
			}
			var stderr bytes.Buffer
			_, err := LoadConfig(args, envMap(nil), &stderr)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error() + stderr.String(); !strings.Contains(msg, c.want) {
				t.Fatalf("error %q does not name %q", msg, c.want)
			}
		})
	}
	if _, err := LoadConfig([]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, envMap(nil), io.Discard); err == nil {
		t.Fatal("a missing config file is not an error")
	}
}

func FuzzParseFile(f *testing.F) {
	for _, seed := range []string{
		"", "listen: a:1\n", "access-key: k\n", "access-key: [a, b]\n", "upstream: [\"http://x/{hub}\"]\n",
		"upstreams:\n  - {url: \"http://x\", hub: \"*\", category: messages, event: \"a,b\"}\n",
		"keep-alive-interval: 15s\nmax-message-size: 1024\n", "listen: [\n", "? [a]\n: b\n", "&a [*a]", "!!binary x",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		if err := c.ParseFile(data); err != nil {
			return
		}
		_ = c.Validate() // must not panic on anything the parser accepted
	})
}

func TestCLI(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := CLI{Version: "1.2.3", Stdout: &out, Stderr: &errb, Getenv: envMap(nil)}.Run(context.Background(), args)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run("version"); code != 0 || strings.TrimSpace(out) != "signalbox 1.2.3" {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := run(); code != ExitConfig {
		t.Fatalf("no command: %d", code)
	}
	if code, _, errs := run("serve", "-h"); code != ExitOK || !strings.Contains(errs, "-access-key") {
		t.Fatalf("serve -h: %d %q", code, errs)
	}
	if code, _, _ := run("frobnicate"); code != ExitConfig {
		t.Fatalf("unknown command: %d", code)
	}
	if code, _, errs := run("serve", "--listen", "bad"); code != ExitConfig || !strings.Contains(errs, "listen") {
		t.Fatalf("bad config: %d %q", code, errs)
	}
	code, out, _ := run("token", "--access-key", testKey, "--hub", "Chat", "--user", "u1", "--endpoint", "http://h:1")
	if code != 0 {
		t.Fatalf("token: %d", code)
	}
	v := &auth.Validator{Keys: []string{testKey}}
	p, err := v.ValidateClient(strings.TrimSpace(out), "chat")
	if err != nil || p.UserID != "u1" {
		t.Fatalf("token does not validate: %v %+v", err, p)
	}
	code, out, _ = run("token", "--access-key", testKey, "--rest", "/api/hubs/chat/:send", "--endpoint", "http://h:1")
	if _, err := v.ValidateREST(strings.TrimSpace(out), "/api/hubs/chat/:send"); code != 0 || err != nil {
		t.Fatalf("REST token: %d %v", code, err)
	}
	if code, _, _ := run("token", "--hub", "chat"); code != ExitConfig {
		t.Fatalf("token without key: %d", code)
	}
}

func TestServeGeneratesKeyAndDrainsOnCancel(t *testing.T) {
	var out, errb bytes.Buffer
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	cli := CLI{Stdout: &out, Stderr: &errb, Getenv: envMap(map[string]string{EnvNodeID: "n1"}),
		Ready: func(ep string) { ready <- ep }}
	go func() {
		done <- cli.Run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--redis-url", "redis://127.0.0.1:1/0"})
	}()
	var endpoint string
	select {
	case endpoint = <-ready:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, errb.String())
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	m := regexp.MustCompile(`^Endpoint=(http://127\.0\.0\.1:\d+);AccessKey=([A-Za-z0-9+/]{44});Version=1\.0;\n$`).FindStringSubmatch(out.String())
	if m == nil || m[1] != endpoint {
		t.Fatalf("stdout %q (endpoint %s)", out.String(), endpoint)
	}
	resp, err := http.Get(endpoint + "/api/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop")
	}
	logs := errb.String()
	if !strings.Contains(logs, "cluster mode is not implemented") || !strings.Contains(logs, endpoint) || strings.Contains(logs, m[2]) {
		t.Fatalf("logs: %s", logs)
	}
}

func TestServeNeverLogsASuppliedKey(t *testing.T) {
	var out, errb bytes.Buffer
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	cli := CLI{Stdout: &out, Stderr: &errb, Ready: func(ep string) { ready <- ep }}
	go func() {
		done <- cli.Run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--access-key", testKey, "--log-level", "debug"})
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	cancel()
	<-done
	if out.Len() != 0 || strings.Contains(errb.String(), testKey) {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
}
