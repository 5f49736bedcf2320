package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

// syncBuffer is a bytes.Buffer safe to read while the server writes its log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// served is `signalbox serve` run in-process on a free loopback port.
type served struct {
	endpoint  string
	out, errb syncBuffer
	cancel    context.CancelFunc
	done      chan int
}

// serveApp runs serve with args (after --listen 127.0.0.1:0) until it is ready.
func serveApp(t *testing.T, env map[string]string, args ...string) *served {
	t.Helper()
	sv := &served{done: make(chan int, 1)}
	readyc := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	sv.cancel = cancel
	a := &app{stdout: &sv.out, stderr: &sv.errb, getenv: func(k string) string { return env[k] }, ready: func(ep string) { readyc <- ep }}
	go func() { sv.done <- a.run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)) }()
	select {
	case sv.endpoint = <-readyc:
	case code := <-sv.done:
		cancel()
		t.Fatalf("serve exited with %d: %s", code, sv.errb.String())
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("not ready")
	}
	t.Cleanup(func() { sv.stop(t) })
	return sv
}

// stop drains the server (once) and returns its exit code.
func (sv *served) stop(t *testing.T) int {
	t.Helper()
	sv.cancel()
	select {
	case code, ok := <-sv.done:
		if !ok {
			return 0
		}
		close(sv.done)
		return code
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
		return -1
	}
}

// negotiateStatus negotiates hub chat with a client token signed with key.
func negotiateStatus(t *testing.T, endpoint, key string) int {
	t.Helper()
	tok, err := auth.NewToken(key, auth.TokenOptions{Audience: auth.ClientAudience(endpoint, "chat")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", endpoint+"/client/negotiate?hub=chat", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Issue 7, found 8: a key passed as a flag shows in the process list; a one-character
// key was accepted without a word. --access-key-file reads the keys from a file, and a
// short key is accepted with a warning that never shows the key.
func TestServeAccessKeyFileAndShortKeyWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	const short = "s3cr"
	if err := os.WriteFile(path, []byte("# primary, then secondary\n"+short+"\n\n"+testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sv := serveApp(t, nil, "--access-key-file", path)
	for _, key := range []string{short, testKey} {
		if code := negotiateStatus(t, sv.endpoint, key); code != 200 {
			t.Errorf("token of a key from the file: %d", code)
		}
	}
	if code := sv.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	logs := sv.errb.String()
	if !strings.Contains(logs, "access key is short") || !strings.Contains(logs, "key=1 length=4") || strings.Contains(logs, "key=2") {
		t.Fatalf("want one warning, for key 1: %s", logs)
	}
	if strings.Contains(logs, short) || strings.Contains(logs, testKey) || sv.out.String() != "" {
		t.Fatalf("a key was printed: stdout %q stderr %s", sv.out.String(), logs)
	}
}
