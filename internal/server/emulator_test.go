package server

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseEmulatorSettings(t *testing.T) {
	rules, err := ParseEmulatorSettings([]byte(`{
  "Logging": {"LogLevel": {"Default": "Warning"}},
  "UpstreamSettings": {
    "Templates": [
      {"UrlTemplate": "http://localhost:7071/runtime/webhooks/signalr", "EventPattern": "*", "HubPattern": "*", "CategoryPattern": "*"},
      {"urltemplate": "http://localhost:7072/api/{event}", "hubpattern": "chat,news", "categoryPattern": "messages", "eventPattern": "broadcast"}
    ]
  }
}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []UpstreamRule{
		{URL: "http://localhost:7071/runtime/webhooks/signalr", Hub: "*", Category: "*", Event: "*"},
		{URL: "http://localhost:7072/api/{event}", Hub: "chat,news", Category: "messages", Event: "broadcast"},
	}
	if len(rules) != 2 || rules[0] != want[0] || rules[1] != want[1] {
		t.Fatalf("%+v", rules)
	}
	for _, bad := range []struct{ in, want string }{
		{`[]`, "not the emulator's settings.json"},
		{`{}`, "no UpstreamSettings section"},
		{`{"UpstreamSettings": {"Templates": {}}}`, "want a list"},
		{`{"UpstreamSettings": {"Templates": [{"HubPattern": "*"}]}}`, "Templates[0]: UrlTemplate is required"},
		{`{"UpstreamSettings": {"Templates": [{"UrlTemplate": "http://x", "Hubpatern": "*"}]}}`, `unknown key "Hubpatern"`},
		{`{"UpstreamSettings": {"Templates": [{"UrlTemplate": 7}]}}`, "UrlTemplate: want a string"},
	} {
		if _, err := ParseEmulatorSettings([]byte(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.in, err, bad.want)
		}
	}
}

func TestLoadWithEmulatorSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "settings.json")
	if err := os.WriteFile(file, []byte(`{"UpstreamSettings":{"Templates":[{"UrlTemplate":"http://emu/{hub}","HubPattern":"chat"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(envMap(map[string]string{"SIGNALBOX_EMULATOR_SETTINGS": file}), map[string][]string{"upstream": {"http://flag/{hub}"}})
	if err != nil {
		t.Fatal(err)
	}
	rules := cfg.Rules()
	if len(rules) != 2 || rules[0].URLTemplate != "http://flag/{hub}" || rules[1].URLTemplate != "http://emu/{hub}" || rules[1].HubPattern != "chat" {
		t.Fatalf("rules %+v: the emulator's templates come after the others", rules)
	}
	if err := os.WriteFile(file, []byte(`{"UpstreamSettings":{"Templates":[{"UrlTemplate":"not a url {hub}"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(envMap(map[string]string{"SIGNALBOX_EMULATOR_SETTINGS": file}), nil); err == nil || !strings.Contains(err.Error(), "upstreams[0]") {
		t.Fatalf("a bad emulator template: %v", err)
	}
	if _, err := Load(nil, map[string][]string{"emulator-settings": {filepath.Join(dir, "missing.json")}}); err == nil || !strings.Contains(err.Error(), "emulator-settings") {
		t.Fatalf("a missing emulator file: %v", err)
	}
}

func TestTLSSettings(t *testing.T) {
	if _, err := Load(nil, map[string][]string{"tls-cert": {"cert.pem"}}); err == nil || !strings.Contains(err.Error(), "tls-cert, tls-key: give both") {
		t.Fatalf("cert without key: %v", err)
	}
	cfg := fastConfig()
	cfg.TLSCert, cfg.TLSKey = filepath.Join(t.TempDir(), "no.pem"), filepath.Join(t.TempDir(), "no.key")
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "tls-cert") {
		t.Fatalf("missing certificate files: %v", err)
	}
	if got := EndpointFor(cfg, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}); got != "https://127.0.0.1:0" && !strings.HasPrefix(got, "https://127.0.0.1:") {
		t.Fatalf("endpoint with TLS: %s", got)
	}
}

func FuzzParseEmulatorSettings(f *testing.F) {
	for _, seed := range []string{
		`{"UpstreamSettings":{"Templates":[{"UrlTemplate":"http://x/{hub}","HubPattern":"*"}]}}`,
		`{"upstreamsettings":{"templates":[]}}`, `{}`, `[]`, `{"UpstreamSettings":null}`, `{"UpstreamSettings":{"Templates":[null]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseEmulatorSettings(data)
		if err != nil {
			return
		}
		for _, r := range rules {
			if r.URL == "" {
				t.Fatalf("a rule without a URL was accepted: %+v", r)
			}
		}
	})
}
