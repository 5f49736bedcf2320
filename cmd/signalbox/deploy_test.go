package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileHealthcheck runs the image's HEALTHCHECK command against a live
// server: the image has no shell or curl, so the command must be one the binary has.
func TestDockerfileHealthcheck(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "FROM gcr.io/distroless/static"} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile has no %q (static binary, non-root)", want)
		}
	}
	m := regexp.MustCompile(`(?m)^\s*CMD (\["/usr/local/bin/signalbox", "health".*\])$`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("no HEALTHCHECK CMD running signalbox health")
	}
	var argv []string
	if err := json.Unmarshal([]byte(m[1]), &argv); err != nil {
		t.Fatal(err)
	}
	endpoint := service(t)
	args := argv[1:]
	for i, a := range args {
		args[i] = strings.Replace(a, "http://127.0.0.1:8888", endpoint, 1)
	}
	if r := runCLI(context.Background(), "", nil, args...); r.code != 0 {
		t.Fatalf("%v: %+v", args, r)
	}
}

func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		// CI must not skip silently: scripts/ensure-deps.sh installs systemd there.
		if os.Getenv("CI") == "true" {
			t.Fatalf("systemd-analyze is not installed: %v", err)
		}
		t.Skip("systemd-analyze is not installed")
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", "signalbox.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify wants the executable to exist: point it at one that does.
	unit := filepath.Join(t.TempDir(), "signalbox.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/signalbox", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
