package server

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the settings table")

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
		flags map[string][]string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"default", nil, nil, func(t *testing.T, c Config) {
			if c.Listen != "localhost:8888" || len(c.AccessKeys) != 0 || c.KeepAliveInterval != 15*time.Second {
				t.Fatalf("%+v", c)
			}
		}},
		{"file over default", map[string][]string{"config": {file}}, nil, func(t *testing.T, c Config) {
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
		{"config file from the environment", nil, map[string]string{"SIGNALBOX_CONFIG": file}, func(t *testing.T, c Config) {
			if c.Listen != "file:1" {
				t.Fatalf("%+v", c)
			}
		}},
		{"env over file", map[string][]string{"config": {file}}, map[string]string{
			"SIGNALBOX_LISTEN": "env:2", "SIGNALBOX_ACCESS_KEY": "k1, k2", "SIGNALBOX_UPSTREAM": "http://e1/{hub} http://e2/x",
			"SIGNALBOX_PUBLIC_URL": "http://env.example", "SIGNALBOX_REDIS_URL": "redis://env:1/2", "SIGNALBOX_NODE_ID": "env-node",
			"SIGNALBOX_CLIENT_TIMEOUT": "7s",
		}, func(t *testing.T, c Config) {
			if c.Listen != "env:2" || strings.Join(c.AccessKeys, "|") != "k1|k2" || strings.Join(c.Upstream, "|") != "http://e1/{hub}|http://e2/x" ||
				c.PublicURL != "http://env.example" || c.RedisURL != "redis://env:1/2" || c.NodeID != "env-node" ||
				c.ClientTimeout != 7*time.Second || c.KeepAliveInterval != 5*time.Second {
				t.Fatalf("%+v", c)
			}
		}},
		{"flag over env", map[string][]string{"config": {file}, "listen": {"flag:3"}, "access-key": {"f1", "f2"},
			"upstream": {"http://flag/{hub}"}, "public-url": {"http://flag.example"}, "redis-url": {"redis://flag:1"},
			"node-id": {"flag-node"}, "client-timeout": {"9s"}},
			map[string]string{"SIGNALBOX_LISTEN": "env:2", "SIGNALBOX_ACCESS_KEY": "k1", "SIGNALBOX_UPSTREAM": "http://e1/", "SIGNALBOX_NODE_ID": "env-node",
				"SIGNALBOX_CLIENT_TIMEOUT": "7s"},
			func(t *testing.T, c Config) {
				if c.Listen != "flag:3" || strings.Join(c.AccessKeys, "|") != "f1|f2" || strings.Join(c.Upstream, "|") != "http://flag/{hub}" ||
					c.PublicURL != "http://flag.example" || c.RedisURL != "redis://flag:1" || c.NodeID != "flag-node" ||
					c.ClientTimeout != 9*time.Second || c.KeepAliveInterval != 5*time.Second {
					t.Fatalf("%+v", c)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load(envMap(c.env), c.flags)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		flags map[string][]string
		env   map[string]string
		file  string
		want  []string
	}{
		{"bad listen", map[string][]string{"listen": {"nope"}}, nil, "", []string{"listen"}},
		{"bad port", map[string][]string{"listen": {"h:99999"}}, nil, "", []string{"listen"}},
		{"bad upstream", map[string][]string{"upstream": {"not a url {hub}"}}, nil, "", []string{"upstream"}},
		{"relative upstream", map[string][]string{"upstream": {"/runtime/webhooks/signalr"}}, nil, "", []string{"upstream"}},
		{"bad public url", map[string][]string{"public-url": {"ftp://x"}}, nil, "", []string{"public-url"}},
		{"bad redis url", map[string][]string{"redis-url": {"http://x"}}, nil, "", []string{"redis-url"}},
		{"bad node id", map[string][]string{"node-id": {"a b"}}, nil, "", []string{"node-id"}},
		{"empty key", map[string][]string{"access-key": {""}}, nil, "", []string{"access-key"}},
		{"bad flag duration", map[string][]string{"client-timeout": {"soon"}}, nil, "", []string{"client-timeout (--client-timeout)", `"soon" is not a duration`}},
		{"bad env duration", nil, map[string]string{"SIGNALBOX_CLIENT_TIMEOUT": "soon"}, "", []string{"client-timeout (SIGNALBOX_CLIENT_TIMEOUT)", `"soon"`}},
		{"bad env number", nil, map[string]string{"SIGNALBOX_MAX_CONNECTIONS": "many"}, "", []string{"max-connections (SIGNALBOX_MAX_CONNECTIONS)", `"many" is not a whole number`}},
		{"unknown file key", nil, nil, "lisen: x\n", []string{`line 1: unknown key "lisen" (did you mean "listen"?)`}},
		{"config is not a file key", nil, nil, "config: other.yaml\n", []string{`unknown key "config"`}},
		{"bad file duration", nil, nil, "listen: a:1\nclient-timeout: soon\n", []string{`line 2: client-timeout: "soon" is not a duration`}},
		{"list for a scalar", nil, nil, "listen: [a, b]\n", []string{"line 1: listen: expected a single string"}},
		{"twice", nil, nil, "listen: a:1\nlisten: b:2\n", []string{"listen"}},
		{"negative duration", nil, nil, "poll-timeout: -1s\n", []string{"poll-timeout"}},
		{"broadcast limit below -1", nil, nil, "max-concurrent-broadcasts: -2\n", []string{"max-concurrent-broadcasts"}},
		{"no broadcast queue wait", nil, nil, "broadcast-queue-wait: 0s\n", []string{"broadcast-queue-wait"}},
		{"rule without url", nil, nil, "upstreams: [{hub: chat}]\n", []string{"url is required"}},
		{"rule with a typo", nil, nil, "upstreams: [{url: \"http://x\", hbu: chat}]\n", []string{`unknown key "hbu"`}},
		{"not yaml", nil, nil, "listen: [\n", []string{"config"}},
		{"not a mapping", nil, nil, "- a\n", []string{"expected a mapping"}},
		{"every problem at once", map[string][]string{"client-timeout": {"x"}}, map[string]string{"SIGNALBOX_POLL_TIMEOUT": "y"}, "",
			[]string{"--client-timeout", "SIGNALBOX_POLL_TIMEOUT"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			flags := map[string][]string{}
			for k, v := range c.flags {
				flags[k] = v
			}
			if c.file != "" {
				flags["config"] = []string{writeFile(t, c.file)}
			}
			_, err := Load(envMap(c.env), flags)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := Load(nil, map[string][]string{"config": {filepath.Join(t.TempDir(), "missing.yaml")}}); err == nil {
		t.Fatal("a missing config file is not an error")
	}
}

// TestSettingsTable checks the table: defaults parse, Default equals the documented
// defaults, names are unique, and docs/configuration.md is generated from it.
func TestSettingsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings() {
		for _, name := range []string{"key " + s.Key, "flag " + s.FlagName(), "env " + s.Env()} {
			if !strings.HasSuffix(name, " ") && seen[name] {
				t.Errorf("%s declared twice", name)
			}
			seen[name] = true
		}
		if s.Doc == "" || s.Type == "" {
			t.Errorf("%s has no doc or type", s.Key)
		}
	}
	d := Default()
	if d.Listen != "localhost:8888" || d.LogLevel != "info" || d.KeepAliveInterval != 15*time.Second ||
		d.MaxMessageSize != 1<<20 || d.SendQueueBytes != 4<<20 || d.UpstreamTimeout != 100*time.Second {
		t.Fatalf("defaults: %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
}

func TestConfigurationDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	want := configurationDoc()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/configuration.md is not what the settings table generates: run go test ./internal/server -run TestConfigurationDoc -update")
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

// configurationDoc renders docs/configuration.md from the settings table; a test
// keeps the file equal to it.
func configurationDoc() string {
	var b strings.Builder
	b.WriteString(`# Configuration of ` + "`signalbox serve`" + `

Generated from the settings table (` + "`internal/server/settings.go`" + `) by
` + "`go test ./internal/server -run TestConfigurationDoc -update`" + `; do not edit by hand.

Every setting is a flag, an environment variable and a key of the YAML file given with ` + "`--config`" + `.
Precedence: flag > environment > config file > default. Flags are written ` + "`--name value`" + ` or
` + "`--name=value`" + ` and may stand anywhere on the command line; ` + "`--`" + ` ends the flags. A repeatable
setting takes its flag several times, a YAML list, and an environment value separated as shown.
Unknown keys and bad values are start-up errors that name the setting and where it came from.

| key | flag | environment | type | default | description |
|---|---|---|---|---|---|
`)
	for _, s := range settings {
		key := "`" + s.Key + "`"
		if s.NoFile {
			key = "(not a file key)"
		}
		flag, env := "", ""
		if f := s.FlagName(); f != "" {
			flag = "`--" + f + "`"
		}
		if e := s.Env(); e != "" {
			env = "`" + e + "`"
			if s.Repeated {
				sep := "comma"
				if s.EnvSep == " " {
					sep = "space"
				}
				env += " (" + sep + "-separated)"
			}
		}
		def := ""
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", key, flag, env, s.Type, def, strings.ReplaceAll(s.Doc, "|", "\\|"))
	}
	b.WriteString(`
Example file:

` + "```yaml" + `
listen: 0.0.0.0:8888
access-key: [primary-key, secondary-key]
upstream: http://localhost:7071/runtime/webhooks/signalr
upstreams:
  - url: http://localhost:7072/api/{event}
    hub: chat
    category: messages
    event: "broadcast, echo"
keep-alive-interval: 15s
` + "```" + `
`)
	return b.String()
}
