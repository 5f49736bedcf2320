package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// healthAliases are the spellings of Azure's health route a load balancer may probe.
var healthAliases = []string{
	"/api/health", "/api/health/", "/api/Health", "/API/HEALTH", "/Api/Health/",
	"/api/v1/health", "/api/v1/health/", "/api/V1/Health", "/API/V1/HEALTH/",
	"/api/health?probe=1", "/api/v1/health/?x=y",
}

// probeAll asks every alias with GET and HEAD through h and fails unless each
// answers want.
func probeAll(t *testing.T, h http.Handler, when string, want int) {
	t.Helper()
	for _, path := range healthAliases {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
			if rec.Code != want {
				t.Errorf("%s: %s %s answered %d, want %d", when, method, path, rec.Code, want)
			}
		}
	}
}

func TestHealthAliasesBeforeWhileAndDraining(t *testing.T) {
	cfg := fastConfig()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	probeAll(t, s.Handler(), "before serving", http.StatusServiceUnavailable)
	if code := get(t, s.Handler(), "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before serving: %d, want 200 (the process is alive)", code)
	}
	if code := get(t, s.Handler(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before serving: %d", code)
	}

	ts := serveOn(t, s)
	// While serving, over real HTTP.
	for _, path := range healthAliases {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if resp := ts.do(method, path, "", nil, nil); resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("serving: %s %s answered %d (Cache-Control %q)", method, path, resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp := ts.do("GET", path, "", nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("serving: %s answered %d", path, resp.StatusCode)
		}
	}
	if resp := ts.do("POST", "/api/v1/health", "", nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/v1/health: %d", resp.StatusCode)
	}

	// While draining: Shutdown has begun and the server still answers requests in
	// flight (a load balancer's probe on a kept-alive connection).
	drained := false
	s.whileDraining = func() {
		drained = true
		probeAll(t, s.Handler(), "while draining", http.StatusServiceUnavailable)
		if code := get(t, s.Handler(), "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz while draining: %d", code)
		}
		if code := get(t, s.Handler(), "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz while draining: %d, want 200 (alive)", code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !drained {
		t.Fatal("the drain hook did not run")
	}
}

func TestReadinessCheck(t *testing.T) {
	ts := startServer(t, nil)
	var backendDown atomic.Pointer[error]
	ts.s.AddReadinessCheck("cluster backend", func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the check got no deadline")
		}
		if err := backendDown.Load(); err != nil {
			return *err
		}
		return nil
	})
	if resp := ts.do("GET", "/readyz", "", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("ready: %d", resp.StatusCode)
	}
	down := errors.New("redis: connection refused")
	backendDown.Store(&down)
	resp := ts.do("GET", "/readyz", "", nil, nil)
	if body := readBody(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "cluster backend: redis: connection refused") {
		t.Fatalf("backend down: %d %q", resp.StatusCode, body)
	}
	// Liveness and Azure's health route do not depend on the backend.
	if resp := ts.do("GET", "/healthz", "", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz with the backend down: %d", resp.StatusCode)
	}
	backendDown.Store(nil)
	if resp := ts.do("GET", "/readyz", "", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("ready again: %d", resp.StatusCode)
	}
}

func get(t *testing.T, h http.Handler, path string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}
