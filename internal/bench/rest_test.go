package bench

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/management"
)

// TestUserSenderRaw checks the wrk-like caller against net/http's server: the
// request it renders (path, token audience, headers, body), keep-alive reuse, and
// the status of every kind of answer.
func TestUserSenderRaw(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	var conns atomic.Int64
	answer := func(w http.ResponseWriter, r *http.Request) {
		user := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/hubs/bench/users/"), "/:send")
		switch user {
		case "busy":
			w.Header().Set("x-ms-error-code", "Error.Service.Overloaded")
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"code":"Error.Service.Overloaded","message":"retry later"}`)
		case "close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusAccepted)
		case "chunked":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, strings.Repeat("x", 8<<10)) // past the response buffer: chunked
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.RawQuery != "api-version="+management.APIVersion ||
			r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("request %s %s, content type %q", r.Method, r.URL, r.Header.Get("Content-Type"))
		}
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		v := &auth.Validator{Keys: []string{key}}
		if _, err := v.ValidateREST(tok, r.URL.EscapedPath()); err != nil {
			t.Errorf("token for %s: %v", r.URL.EscapedPath(), err)
		}
		body, _ := io.ReadAll(r.Body)
		var pm struct {
			Target    string
			Arguments []json.RawMessage
		}
		if err := json.Unmarshal(body, &pm); err != nil || pm.Target != "bench" || len(pm.Arguments) != 2 {
			t.Errorf("body %s: %v", body, err)
		}
		answer(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	s := newUserSender(srv.Client(), srv.URL, key, "Bench", "bench")
	defer s.close()
	if s.addr == "" {
		t.Fatalf("%s: not sent raw", srv.URL)
	}
	ctx := context.Background()
	args := json.RawMessage(`[1,"x"]`)
	for range 5 {
		if err := s.send(ctx, "u1", args); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 sequential sends used %d connections, want 1 (keep-alive)", n)
	}
	var re *management.ResponseError
	if err := s.send(ctx, "busy", args); !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable ||
		re.ErrorCode != "Error.Service.Overloaded" || !strings.Contains(re.Message, "retry later") {
		t.Fatalf("503: %v", err)
	}
	if err := s.send(ctx, "u1", args); err != nil || conns.Load() != 1 {
		t.Fatalf("after a 503 with a body: %v, %d connections", err, conns.Load())
	}
	if err := s.send(ctx, "close", args); err != nil {
		t.Fatalf("202 with Connection: close: %v", err)
	}
	if err := s.send(ctx, "chunked", args); !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		t.Fatalf("chunked 400: %v", err)
	}
	if err := s.send(ctx, "u2", args); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3 (closed after Connection: close and after a chunked body)", n)
	}
}
