package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Health: /api/health and every alias of it (/api/v1/health, a trailing slash, any
// letter case: the REST API routes them all here) answer 200 while the server
// serves and 503 before and while draining, as Azure's does. /healthz is liveness
// (200 while the process answers, draining included); /readyz is readiness: /api/health
// plus every registered readiness check (the cluster registers one for its backend).

// readinessTimeout bounds one run of the readiness checks.
const readinessTimeout = 2 * time.Second

// readiness holds the checks registered with AddReadinessCheck.
type readiness struct {
	mu     sync.Mutex
	checks []namedCheck
}

type namedCheck struct {
	name  string
	check func(context.Context) error
}

// AddReadinessCheck registers a check that /readyz runs on each request: while it
// returns an error the server is not ready (503, the check named in the body). The
// cluster code registers one for its backend. Checks must be fast and honour ctx.
func (s *Server) AddReadinessCheck(name string, check func(ctx context.Context) error) {
	s.readiness.mu.Lock()
	defer s.readiness.mu.Unlock()
	s.readiness.checks = append(s.readiness.checks, namedCheck{name, check})
}

// serving reports whether the server accepts requests and is not draining.
func (s *Server) serving() bool {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	return s.ready.Load() && !draining
}

// probe answers a health probe: only GET and HEAD, never cached.
func probe(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return false
	}
	w.Header().Set("Cache-Control", "no-store")
	return true
}

// health is /api/health and its aliases.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if !probe(w, r) {
		return
	}
	if !s.serving() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// healthz is liveness: the process answers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if probe(w, r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	}
}

// readyz is readiness: serving, not draining, and every readiness check passes.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !probe(w, r) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.serving() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not serving (starting or draining)\n"))
		return
	}
	s.readiness.mu.Lock()
	checks := append([]namedCheck(nil), s.readiness.checks...)
	s.readiness.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
	defer cancel()
	var failed []string
	for _, c := range checks {
		if err := c.check(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", c.name, err))
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(strings.Join(failed, "\n") + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
