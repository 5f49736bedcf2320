package server

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/signalbox-io/signalbox/internal/metrics"
)

// Auth failures are counted (signalbox_auth_failures_total) and logged with their
// reason, at warn level at most authLogBurst lines per authLogWindow so that a client
// retrying a bad key cannot flood the log (the next line says how many were left
// out), and each one at debug level. The token is never logged, nor the query string
// that may carry it (access_token=).
const (
	authLogBurst  = 10
	authLogWindow = 10 * time.Second
)

// rateLimitedLog lets through a burst of lines per window.
type rateLimitedLog struct {
	log *slog.Logger

	mu         sync.Mutex
	start      time.Time
	n          int
	suppressed int
}

// allow reports whether a line may be written now, and how many were suppressed
// since the last one written.
func (l *rateLimitedLog) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= authLogWindow {
		l.start, l.n = now, 0
	}
	if l.n >= authLogBurst {
		l.suppressed++
		return false, 0
	}
	l.n++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}

// authFailed records a rejected token at endpoint (negotiate, connect, rest): every
// one is counted and logged at debug level with its reason ("access token refused"),
// and at warn level within the rate limit ("access token rejected").
func (s *Server) authFailed(r *http.Request, endpoint string, err error) {
	reason := metrics.AuthReason(err)
	s.metrics.AuthFailure(endpoint, reason)
	debug := s.log.Enabled(r.Context(), slog.LevelDebug)
	ok, suppressed := s.authLog.allow(time.Now())
	if !ok && !debug {
		return
	}
	attrs := []any{
		slog.String("endpoint", endpoint), slog.String("reason", reason),
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	if debug {
		s.log.Debug("access token refused", attrs...)
	}
	if !ok {
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	s.log.Warn("access token rejected", attrs...)
}
