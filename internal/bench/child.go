package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a process the bench started: the Signalbox server or the floor server.
type child struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser // the child's standard input, open while it runs
	stderr *tail
	done   chan struct{}
	err    error  // Wait's result, set before done is closed
	onStop func() // cleanup after the process ended, or nil
}

// tail keeps the last bytes written to it, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// stopGrace is how long a child may drain after SIGTERM before it is killed.
const stopGrace = 10 * time.Second

// startChild runs argv with extra environment; stdout, if not nil, receives the
// child's standard output. The child gets SIGKILL if the bench process dies.
func startChild(argv, env []string, stdout io.Writer) (*child, error) {
	if len(argv) == 0 {
		return nil, errors.New("bench: no server command")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// The user's SIGNALBOX_* settings (upstream, config file, ...) would change what
	// is measured: the child gets only the ones the bench sets.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIGNALBOX_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	c := &child{cmd: cmd, cancel: cancel, stderr: &tail{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	cmd.Stdout = stdout
	// The pipe's write end stays open while we run: a child that watches its stdin
	// (the floor server, a connect worker) ends with us.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bench: %w", err)
	}
	c.stdin = stdin
	cmd.SysProcAttr = childProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("bench: starting %s: %w", argv[0], err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the child (SIGTERM, SIGKILL after stopGrace) and waits for it.
func (c *child) stop() error {
	c.cancel()
	<-c.done
	if c.onStop != nil {
		c.onStop()
		c.onStop = nil
	}
	var ee *exec.ExitError
	if c.err != nil && !errors.As(c.err, &ee) && !errors.Is(c.err, context.Canceled) {
		return fmt.Errorf("bench: child process: %w", c.err)
	}
	return nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: finding a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

func newAccessKey() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serverProc is the Signalbox server under test.
type serverProc struct {
	child    *child
	endpoint string
	key      string
}

// startServer starts `<cmd> serve` on a free loopback port and waits until its
// health endpoint answers.
// key is the access key; "" generates one.
func startServer(ctx context.Context, o *Options, upstreamURL, key string, extra ...string) (*serverProc, error) {
	if key == "" {
		key = newAccessKey()
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		cfgFile, err := benchConfig()
		if err != nil {
			return nil, err
		}
		argv := append(append([]string(nil), o.ServerCmd...), "serve", "--listen", addr, "--log-level", "warn", "--config", cfgFile)
		if upstreamURL != "" {
			argv = append(argv, "--upstream", upstreamURL)
		}
		argv = append(argv, extra...)
		// The key goes through the environment: argv is visible to every local user.
		c, err := startChild(argv, append(append([]string(nil), o.ServerEnv...), "SIGNALBOX_ACCESS_KEY="+key), nil)
		if err != nil {
			_ = os.Remove(cfgFile)
			return nil, err
		}
		c.onStop = func() { _ = os.Remove(cfgFile) }
		sp := &serverProc{child: c, endpoint: "http://" + addr, key: key}
		if lastErr = waitHealthy(ctx, sp); lastErr == nil {
			return sp, nil
		}
		_ = c.stop()
	}
	return nil, lastErr
}

// waitHealthy polls /api/health (every 20 ms, at most 15 s) until it answers 200.
func waitHealthy(ctx context.Context, sp *serverProc) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sp.endpoint+"/api/health", nil)
		if res, err := hc.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-sp.child.done:
			return fmt.Errorf("bench: the server exited before it was ready: %v: %s", sp.child.err, sp.child.stderr)
		case <-ctx.Done():
			return fmt.Errorf("bench: the server did not become ready: %w: %s", ctx.Err(), sp.child.stderr)
		case <-tick.C:
		}
	}
}

// lineWriter hands the first line written to it to a channel.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	ch   chan string
	sent bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := strings.IndexByte(string(w.buf), '\n'); i >= 0 {
		w.ch <- string(w.buf[:i])
		w.sent = true
		w.buf = nil
	} else if len(w.buf) > 4096 {
		w.sent = true
		close(w.ch)
	}
	return len(p), nil
}

// firstLine waits (at most 15 s) for the first line of a child's output.
func firstLine(ctx context.Context, c *child, w *lineWriter) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	select {
	case l, ok := <-w.ch:
		if !ok {
			return "", errors.New("bench: child wrote no line")
		}
		return l, nil
	case <-c.done:
		return "", fmt.Errorf("bench: child exited: %v: %s", c.err, c.stderr)
	case <-ctx.Done():
		return "", fmt.Errorf("bench: child did not start: %w", ctx.Err())
	}
}

// benchLimits lifts the per-client-address and per-user limits: every bench client
// connects from 127.0.0.1, thousands at hundreds per second, which the defaults (made
// for many clients on many addresses) would refuse with 429.
const benchLimits = "max-connections-per-address: 0\nmax-connections-per-user: 0\nnegotiate-rate: 0\nmax-pending-negotiations: 0\n"

// benchConfig writes benchLimits to a temporary config file and returns its path.
func benchConfig() (string, error) {
	f, err := os.CreateTemp("", "signalbox-bench-*.yaml")
	if err != nil {
		return "", fmt.Errorf("bench: config file: %w", err)
	}
	_, err = f.WriteString(benchLimits)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("bench: config file: %w", err)
	}
	return f.Name(), nil
}
