package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// waitLog waits until the server's log holds sub n times.
func (sv *served) waitLog(t *testing.T, sub string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(sv.errb.String(), sub) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q (x%d) in the log:\n%s", sub, n, sv.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Key rotation without restart (issue 7): a change of the config file is picked up
// by itself, a SIGHUP reloads on demand, a bad file keeps the running configuration,
// and the log says what changed without ever showing a key.
func TestServeReloadsOnFileChangeAndSIGHUP(t *testing.T) {
	const second = "second-cli-access-key-zyxwvutsrqponmlkjihgfedcba"
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "signalbox.yaml")
	write := func(content string) {
		t.Helper()
		// Replace by rename, as editors and secret mounts do.
		tmp := cfgPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	write("access-key: [" + testKey + "]\n")
	hup := make(chan os.Signal, 1)
	sv := &served{done: make(chan int, 1)}
	readyc := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	sv.cancel = cancel
	a := &app{stdout: &sv.out, stderr: &sv.errb, getenv: func(string) string { return "" }, hup: hup, ready: func(ep string) { readyc <- ep }}
	go func() {
		sv.done <- a.run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--config", cfgPath})
	}()
	select {
	case sv.endpoint = <-readyc:
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("not ready")
	}
	t.Cleanup(func() { sv.stop(t) })

	if negotiateStatus(t, sv.endpoint, second) != 401 {
		t.Fatal("second key accepted before it was configured")
	}
	write("access-key: [" + testKey + ", " + second + "]\n")
	sv.waitLog(t, `msg="configuration reloaded" trigger="file changed" changed="access-key (2 keys, was 1)"`, 1)
	if negotiateStatus(t, sv.endpoint, second) != 200 || negotiateStatus(t, sv.endpoint, testKey) != 200 {
		t.Fatal("both keys must work while both are configured")
	}
	write("access-key: [" + second + "]\nclient-timeout: 45s\nlog-level: debug\nmax-connections-per-user: 7\n")
	hup <- syscall.SIGHUP
	sv.waitLog(t, `msg="configuration reloaded" trigger=SIGHUP`, 1)
	sv.waitLog(t, `needsRestart=client-timeout`, 1)
	if negotiateStatus(t, sv.endpoint, testKey) != 401 || negotiateStatus(t, sv.endpoint, second) != 200 {
		t.Fatal("after dropping the old key")
	}
	write("access-key: [" + second + "]\nnegotiate-rate: -1\n")
	sv.waitLog(t, "configuration reload failed", 1)
	if negotiateStatus(t, sv.endpoint, second) != 200 {
		t.Fatal("a bad file changed the running configuration")
	}
	sv.stop(t)
	logs := sv.errb.String()
	if strings.Contains(logs, testKey) || strings.Contains(logs, second) {
		t.Fatalf("a key is in the log:\n%s", logs)
	}
	if !strings.Contains(logs, "level=DEBUG") {
		t.Fatalf("log-level debug was not applied:\n%s", logs)
	}
}
