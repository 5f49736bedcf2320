package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/functions"
)

const key = "example-app-test-key-0123456789"

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestFunctionApp(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	svcSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/health" {
			return
		}
		if _, err := (&auth.Validator{Keys: []string{key}}).ValidateREST(auth.TokenFromRequest(r), r.URL.Path); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer svcSrv.Close()
	takeCalls := func() []string { mu.Lock(); defer mu.Unlock(); c := calls; calls = nil; return c }

	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, slog.New(slog.NewTextHandler(logs, nil)), []string{
			"AzureSignalRConnectionString=Endpoint=" + svcSrv.URL + ";AccessKey=" + key + ";Version=1.0;",
			"FUNCTIONS_CUSTOMHANDLER_PORT=0",
		}, func(a string) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the app did not start")
	}

	// Negotiate.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/negotiate", nil)
	req.Header.Set("x-ms-client-principal-id", "alice")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info functions.ConnectionInfo
	err = json.NewDecoder(res.Body).Decode(&info)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || info.URL != svcSrv.URL+"/client/?hub=chat" {
		t.Fatalf("negotiate: %d %+v %v", res.StatusCode, info, err)
	}
	p, err := (&auth.Validator{Keys: []string{key}}).ValidateClient(info.AccessToken, "chat")
	if err != nil || p.UserID != "alice" {
		t.Fatalf("token: %+v %v", p, err)
	}

	upstream := func(category, event, body string, signed bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+functions.TriggerPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(functions.HeaderHub, "chat")
		req.Header.Set(functions.HeaderCategory, category)
		req.Header.Set(functions.HeaderEvent, event)
		req.Header.Set(functions.HeaderConnectionID, "conn-7")
		if signed {
			req.Header.Set(functions.HeaderSignature, auth.UpstreamSignature([]string{key}, "conn-7"))
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := upstream("connections", "connected", `{"type":10}`, true); code != 200 {
		t.Fatalf("connected: %d", code)
	}
	if code, body := upstream("messages", "echo", `{"type":1,"invocationId":"1","target":"echo","arguments":[{"a":[1,2]}]}`, true); code != 200 ||
		body != `{"type":3,"invocationId":"1","result":{"a":[1,2]}}`+"\x1e" {
		t.Fatalf("echo: %d %q", code, body)
	}
	if code, _ := upstream("messages", "broadcast", `{"type":1,"target":"broadcast","arguments":["hello"]}`, true); code != 200 {
		t.Fatalf("broadcast: %d", code)
	}
	if c := takeCalls(); len(c) != 1 || !strings.HasPrefix(c[0], "POST /api/hubs/chat/:send") || !strings.Contains(c[0], `"newMessage"`) || !strings.Contains(c[0], `"hello"`) {
		t.Fatalf("broadcast calls = %q", c)
	}
	if code, body := upstream("messages", "joinGroup", `{"type":1,"invocationId":"2","target":"joinGroup","arguments":["room"]}`, true); code != 200 ||
		body != `{"type":3,"invocationId":"2","result":null}`+"\x1e" {
		t.Fatalf("joinGroup: %d %q", code, body)
	}
	if c := takeCalls(); len(c) != 1 || c[0] != "PUT /api/hubs/chat/groups/room/connections/conn-7" {
		t.Fatalf("joinGroup calls = %q", c)
	}
	// An argument of the wrong type gets the extension's wording, not Go's decoding text
	// (issue 10 item 6, issue 11 item 4).
	if code, body := upstream("messages", "joinGroup", `{"type":1,"invocationId":"3","target":"joinGroup","arguments":[42]}`, true); code != 200 ||
		body != `{"type":3,"invocationId":"3","error":"Exception binding parameter 'arg0'"}`+"\x1e" {
		t.Fatalf("joinGroup(42): %d %q", code, body)
	}
	if c := takeCalls(); len(c) != 0 {
		t.Fatalf("joinGroup(42) calls = %q", c)
	}
	if code, _ := upstream("messages", "echo", `{"type":1,"target":"echo","arguments":[1]}`, false); code != 401 {
		t.Fatalf("unsigned: %d", code)
	}
	if code, _ := upstream("connections", "disconnected", `{"type":11,"error":"bye"}`, true); code != 200 {
		t.Fatalf("disconnected: %d", code)
	}
	for _, want := range []string{"msg=connected", "msg=disconnected", "error=bye"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after cancel", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the app did not stop")
	}
}

func TestFunctionAppNeedsSettings(t *testing.T) {
	err := run(context.Background(), slog.New(slog.DiscardHandler), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "AzureSignalRConnectionString") {
		t.Fatalf("err = %v", err)
	}
}

// startApp runs the app with environ (plus a free port) and returns its base URL; the app
// stops when the test ends.
func startApp(t *testing.T, environ ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, slog.New(slog.DiscardHandler), append(environ, "FUNCTIONS_CUSTOMHANDLER_PORT=0"), func(a string) { addrc <- a })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the app did not stop")
		}
	})
	select {
	case a := <-addrc:
		return "http://" + a
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the app did not start")
	}
	return ""
}

func TestFunctionAppCORSOriginsList(t *testing.T) {
	base := startApp(t,
		"AzureSignalRConnectionString=Endpoint=http://localhost:1;AccessKey="+key+";Version=1.0;",
		"CORS_ALLOWED_ORIGINS=http://a.example, http://b.example ,http://c.example")
	for _, origin := range []string{"http://a.example", "http://b.example", "http://c.example"} {
		req, _ := http.NewRequest(http.MethodOptions, base+"/api/negotiate", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("origin %s: Access-Control-Allow-Origin = %q, want it echoed", origin, got)
		}
	}
}
