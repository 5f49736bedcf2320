package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --access-key-file: the keys come from the file (serve itself is tested in
// cmd/signalbox); giving both ways, or an empty file, is a configuration error.
func TestLoadAccessKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("# primary, then secondary\nshort\n\n"+testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(nil, map[string][]string{"access-key-file": {path}})
	if err != nil || len(cfg.AccessKeys) != 2 || cfg.AccessKeys[0] != "short" || cfg.AccessKeys[1] != testKey {
		t.Fatalf("from the flag: %v %d keys", err, len(cfg.AccessKeys))
	}
	cfg, err = Load(func(k string) string {
		if k == "SIGNALBOX_ACCESS_KEY_FILE" {
			return path
		}
		return ""
	}, nil)
	if err != nil || len(cfg.AccessKeys) != 2 {
		t.Fatalf("from the environment: %v %d keys", err, len(cfg.AccessKeys))
	}
	if _, err := Load(nil, map[string][]string{"access-key": {"k"}, "access-key-file": {path}}); err == nil {
		t.Error("access-key with access-key-file: no error")
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, []byte("# none\n"), 0o600)
	if _, err := Load(nil, map[string][]string{"access-key-file": {empty}}); err == nil || !strings.Contains(err.Error(), "holds no key") {
		t.Errorf("empty key file: %v", err)
	}
	if _, err := Load(nil, map[string][]string{"access-key-file": {path + ".missing"}}); err == nil || strings.Contains(err.Error(), testKey) {
		t.Errorf("missing key file: %v", err)
	}
}
