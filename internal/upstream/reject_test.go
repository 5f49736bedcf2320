package upstream

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// Issue 11 item 3: a connected handler that fails makes the Functions trigger answer 403;
// with RejectConnections the connection is closed, the invocations queued behind connected
// never reach the upstream, and no disconnected follows. The log names the function, not
// the access key, as the cause of a 403.
func TestRejectConnections(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-ASRS-Event") == EventConnected {
			http.Error(w, "user is banned", http.StatusForbidden)
		}
	})
	logs := &logBuffer{}
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), Logger: logs.logger(), RejectConnections: true})
	rejected := make(chan string, 1)
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON(), OnRejected: func(reason string) { rejected <- reason }}, newReplies(protocol.JSON()).fn)
	s.Connected()
	s.Invoke(&protocol.Invocation{Target: "queued"})
	select {
	case reason := <-rejected:
		if reason != "Connection rejected by the upstream: user is banned" {
			t.Errorf("reason %q", reason)
		}
	case <-time.After(waitFor):
		t.Fatal("OnRejected was not called")
	}
	s.Invoke(&protocol.Invocation{Target: "after"})
	s.Disconnected("")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := u.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d upstream requests, want only connected", n)
	}
	log := logs.String()
	if !strings.Contains(log, "connected handler returned an error") || strings.Contains(log, "access key") {
		t.Errorf("log blames the wrong thing: %s", log)
	}
}

// Without the option (the default, as Azure SignalR Service) a refused connected changes
// nothing: the connection stays and its invocations go upstream.
func TestConnectedNotBlockingByDefault(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-ASRS-Event") == EventConnected {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL})})
	called := false
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON(), OnRejected: func(string) { called = true }}, r.fn)
	s.Connected()
	s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "echo"})
	if c := r.next(t); c.Error != "" {
		t.Errorf("invocation after a refused connected: %q", c.Error)
	}
	if called {
		t.Error("OnRejected called without RejectConnections")
	}
}

// A 401 (a wrong ?code= or signature key) still points at the keys.
func TestUnauthorizedCauseNamesKeys(t *testing.T) {
	if c := likelyCause(result{kind: failStatus, status: http.StatusUnauthorized}, CategoryConnections); !strings.Contains(c, "access key") {
		t.Errorf("401 cause %q", c)
	}
	if c := likelyCause(result{kind: failStatus, status: http.StatusForbidden}, CategoryMessages); strings.Contains(c, "access key") {
		t.Errorf("403 cause %q", c)
	}
}
