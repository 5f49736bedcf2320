package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// The connect scenario with more clients than one process may hold
// (Options.ClientsPerProcess) runs them in worker processes: the bench starts its own
// command as `bench --connect-worker` once per share of the clients. It writes a
// workerConfig line to the worker's stdin, then one command per line ("connect",
// "drop", "reconnect N" with N dialers); the worker answers "ready" once its clients' tokens are
// signed, then each command with a workerReport line on its stdout. The end of its
// stdin ends the worker. The open-loop broadcast's publisher runs in a worker of the
// same protocol (`bench --publish-worker`, pubworker.go), and so does the upstream
// scenario's function app (`bench --upstream-worker`, upworker.go).

// Worker commands.
const (
	cmdConnect   = "connect"
	cmdDrop      = "drop"
	cmdReconnect = "reconnect"
	phaseReady   = "ready"
)

// workerConfig is a worker's share of the clients: users u<First> to
// u<First+Count-1> of the hub at Endpoint.
type workerConfig struct {
	Endpoint  string `json:"endpoint"`
	Key       string `json:"key"` // signs the clients' tokens; stdin is private, argv is not
	Hub       string `json:"hub"`
	Protocol  string `json:"protocol"`
	Transport string `json:"transport"`
	First     int    `json:"first"`
	Count     int    `json:"count"`
	Dialers   int    `json:"dialers"` // of the first connect; the reconnect command names its own
}

// workerReport answers a command (or says "ready").
type workerReport struct {
	Phase     string     `json:"phase"`
	Connected int        `json:"connected,omitempty"`
	Failed    int64      `json:"failed,omitempty"`
	Connect   *Histogram `json:"connect,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	Error     string     `json:"error,omitempty"` // the command failed; the worker ends
	// Publish is a publish worker's answer to "warmup" or "measure" (pubworker.go).
	Publish *publishCounts `json:"publish,omitempty"`
	// URL is an upstream worker's function app, in its "ready" report.
	URL string `json:"url,omitempty"`
}

// ServeConnectWorker runs `signalbox bench --connect-worker` (the protocol above).
// It returns when stdin reaches EOF (after closing its clients), when ctx ends, or
// after 15 minutes.
func ServeConnectWorker(ctx context.Context, stdin io.Reader, stdout io.Writer, logger *slog.Logger) error {
	return serveWorker(ctx, stdin, stdout, "connect", func(ctx context.Context, line []byte, _ *workerReport) (workerHandler, func(), error) {
		var cfg workerConfig
		if err := json.Unmarshal(line, &cfg); err != nil {
			return nil, nil, fmt.Errorf("bench: connect worker configuration: %w", err)
		}
		o := Options{Scenario: Connect, Clients: cfg.Count, Hub: cfg.Hub, Protocol: cfg.Protocol, Transport: cfg.Transport,
			ConnectConcurrency: cfg.Dialers, ServerCmd: []string{os.Args[0]}, Logger: logger}
		if err := o.Validate(); err != nil {
			return nil, nil, err
		}
		proto, _ := protocol.Lookup(o.Protocol)
		e := &env{o: &o, proto: proto, endpoint: cfg.Endpoint, key: cfg.Key, firstUser: cfg.First,
			hc: newHTTPClient(cfg.Dialers + cfg.Count), tokens: &clientTokens{}}
		ld, err := newLocalLoad(e)
		if err != nil {
			return nil, nil, err
		}
		cleanup := func() {
			ld.close()
			e.hc.CloseIdleConnections()
		}
		// Signed before "ready": the bench's clock starts with "connect".
		aud := auth.ClientAudience(e.endpoint, o.Hub)
		for i := range cfg.Count {
			if _, err := e.tokens.get(e.key, aud, e.user(i)); err != nil {
				cleanup()
				return nil, nil, err
			}
		}
		return func(ctx context.Context, cmd, arg string) (workerReport, error) {
			rep := workerReport{Phase: cmd}
			var p *connectPhase
			var err error
			switch cmd {
			case cmdConnect, cmdReconnect:
				if ld.f != nil {
					return rep, errors.New("bench: connect worker: the clients are connected already")
				}
				if cmd == cmdConnect {
					p, err = ld.connect(ctx)
				} else {
					dialers, aerr := strconv.Atoi(arg)
					if aerr != nil || dialers < 1 {
						return rep, fmt.Errorf("bench: connect worker: dialers %q", arg)
					}
					p, err = ld.reconnect(ctx, dialers)
				}
			case cmdDrop:
				err = ld.drop(ctx)
			default:
				err = fmt.Errorf("bench: connect worker: unknown command %q", cmd)
			}
			if p != nil {
				rep.Connected, rep.Failed, rep.Connect, rep.LastError = p.connected, p.failed, p.connect, p.lastErr
			}
			return rep, err
		}, cleanup, nil
	})
}

// workerHandler runs one command of a worker ("reconnect 64": cmd "reconnect", arg
// "64") and returns its report; an error ends the worker.
type workerHandler func(ctx context.Context, cmd, arg string) (workerReport, error)

// serveWorker is the worker's side of the protocol above, for every kind of worker:
// start gets the configuration line and returns the command handler and what to do at
// the end; then "ready" is reported and every command answered. A failure is reported
// (with the phase it failed in) and ends the worker. It returns when stdin reaches EOF,
// when ctx ends, or after 15 minutes.
func serveWorker(ctx context.Context, stdin io.Reader, stdout io.Writer, kind string,
	start func(ctx context.Context, cfg []byte, ready *workerReport) (workerHandler, func(), error)) error {
	ctx, cancel := context.WithTimeout(ctx, floorLifetime)
	defer cancel()
	cmds := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case cmds <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		cancel() // the bench closed our stdin, or ended
	}()
	enc := json.NewEncoder(stdout)
	fail := func(phase string, err error) error {
		_ = enc.Encode(workerReport{Phase: phase, Error: err.Error()})
		return err
	}
	var line string
	select {
	case line = <-cmds:
	case <-ctx.Done():
		return nil
	}
	ready := workerReport{Phase: phaseReady}
	handle, cleanup, err := start(ctx, []byte(line), &ready)
	if err != nil {
		return fail(phaseReady, err)
	}
	defer cleanup()
	if err := enc.Encode(ready); err != nil {
		return fmt.Errorf("bench: %s worker: %w", kind, err)
	}
	for {
		var cmd string
		select {
		case cmd = <-cmds:
		case <-ctx.Done():
			return nil
		}
		cmd, arg, _ := strings.Cut(cmd, " ")
		rep, err := handle(ctx, cmd, arg)
		if err != nil {
			if ctx.Err() != nil {
				return nil // the bench ended
			}
			return fail(cmd, err)
		}
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("bench: %s worker: %w", kind, err)
		}
	}
}

// connectWorker is one worker process, seen from the bench: a connect worker or a
// publish worker (pubworker.go).
type connectWorker struct {
	kind    string // "connect", "publish" or "upstream", for messages
	c       *child
	reports chan workerReport // closed once the worker's stdout ended
}

// workerReports bounds the reports a worker may send: one per step of the protocol.
const workerReports = 8

func startConnectWorker(o *Options, cfg workerConfig) (*connectWorker, error) {
	return startWorker(o, "connect", cfg)
}

// startWorker starts `bench --<kind>-worker` and writes cfg to it as its first line.
func startWorker(o *Options, kind string, cfg any) (*connectWorker, error) {
	pr, pw := io.Pipe()
	argv := append(append([]string(nil), o.ServerCmd...), "bench", "--"+kind+"-worker")
	c, err := startChild(argv, nil, pw)
	if err != nil {
		pw.Close()
		return nil, err
	}
	w := &connectWorker{kind: kind, c: c, reports: make(chan workerReport, workerReports)}
	go func() {
		<-c.done // Wait has copied all of stdout
		pw.Close()
	}()
	go func() {
		defer close(w.reports)
		dec := json.NewDecoder(pr)
		for {
			var rep workerReport
			if err := dec.Decode(&rep); err != nil {
				if !errors.Is(err, io.EOF) {
					select {
					case w.reports <- workerReport{Error: fmt.Sprintf("unreadable report: %v", err)}:
					default:
					}
				}
				_, _ = io.Copy(io.Discard, pr) // until the worker ends
				return
			}
			select {
			case w.reports <- rep:
			default: // more than the protocol has: the await that reads them fails
			}
		}
	}()
	line, err := json.Marshal(cfg)
	if err == nil {
		_, err = c.stdin.Write(append(line, '\n'))
	}
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("bench: starting a %s worker: %w", kind, err)
	}
	return w, nil
}

// await returns the worker's next report, which must answer phase.
func (w *connectWorker) await(ctx context.Context, phase string) (workerReport, error) {
	select {
	case rep, ok := <-w.reports:
		switch {
		case !ok:
			<-w.c.done
			return rep, fmt.Errorf("bench: a %s worker exited: %v: %s", w.kind, w.c.err, w.c.stderr)
		case rep.Error != "":
			return rep, fmt.Errorf("bench: %s worker %s: %s", w.kind, phase, rep.Error)
		case rep.Phase != phase:
			return rep, fmt.Errorf("bench: %s worker: %q answered, want %q", w.kind, rep.Phase, phase)
		}
		return rep, nil
	case <-ctx.Done():
		return workerReport{}, fmt.Errorf("bench: waiting for the %s workers (%s): %w", w.kind, phase, ctx.Err())
	}
}

// stop closes the worker's stdin, which ends it once its clients are closed, and
// waits for it (SIGTERM after stopGrace).
// startReadyWorker starts `bench --<kind>-worker` with cfg and waits up to 30 s for
// its "ready" report; the worker is stopped when it does not come.
func startReadyWorker(ctx context.Context, o *Options, kind string, cfg any) (*connectWorker, workerReport, error) {
	w, err := startWorker(o, kind, cfg)
	if err != nil {
		return nil, workerReport{}, err
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep, err := w.await(actx, phaseReady)
	if err != nil {
		w.stop()
		return nil, workerReport{}, err
	}
	return w, rep, nil
}

// sample is the worker process's CPU (zero when it cannot be read).
func (w *connectWorker) sample() ProcSample {
	s, err := ReadProc(w.c.pid())
	if err != nil {
		return ProcSample{}
	}
	return s
}

func (w *connectWorker) stop() {
	_ = w.c.stdin.Close()
	select {
	case <-w.c.done:
	case <-time.After(stopGrace):
	}
	_ = w.c.stop()
}

// share is a worker's part of total dialers: as its count of clients is of all.
func share(total, count, clients int) int { return max(1, (total*count+clients-1)/clients) }

// workerLoad is the connect scenario's clients in worker processes.
type workerLoad struct {
	e       *env
	workers []*connectWorker
	counts  []int // clients of each worker
}

// startConnectWorkers starts n workers with an even share of the clients and of the
// dialers each, and waits until every one is ready.
func startConnectWorkers(ctx context.Context, e *env, n int) (*workerLoad, error) {
	o := e.o
	l := &workerLoad{e: e}
	first := 0
	for i := range n {
		count := o.Clients / n
		if i < o.Clients%n {
			count++
		}
		w, err := startConnectWorker(o, workerConfig{Endpoint: e.endpoint, Key: e.key, Hub: o.Hub,
			Protocol: o.Protocol, Transport: o.Transport, First: first, Count: count,
			Dialers: share(o.ConnectConcurrency, count, o.Clients)})
		if err != nil {
			l.close()
			return nil, err
		}
		l.workers = append(l.workers, w)
		l.counts = append(l.counts, count)
		first += count
	}
	o.Logger.Info("connect workers started", slog.Int("workers", n), slog.Int("clients", o.Clients))
	if _, err := l.all(ctx, nil, phaseReady); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// all sends every worker its command (cmd(i), nil = none), then waits for every
// answer. Every phase is bounded as connectAll bounds its own, with 30 s to spare.
func (l *workerLoad) all(ctx context.Context, cmd func(i int) string, phase string) ([]workerReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute+30*time.Second+time.Duration(l.e.o.Clients)*2*time.Millisecond)
	defer cancel()
	if cmd != nil {
		for i, w := range l.workers {
			if _, err := io.WriteString(w.c.stdin, cmd(i)+"\n"); err != nil {
				return nil, fmt.Errorf("bench: commanding a connect worker: %w", err)
			}
		}
	}
	reps := make([]workerReport, len(l.workers))
	for i, w := range l.workers {
		rep, err := w.await(ctx, phase)
		if err != nil {
			return nil, err
		}
		reps[i] = rep
	}
	return reps, nil
}

// phase runs a command on every worker and merges their figures.
func (l *workerLoad) phase(ctx context.Context, cmd func(i int) string, phase string) (*connectPhase, error) {
	reps, err := l.all(ctx, cmd, phase)
	if err != nil {
		return nil, err
	}
	p := &connectPhase{connect: &Histogram{}}
	for _, rep := range reps {
		p.connected += rep.Connected
		p.failed += rep.Failed
		if rep.Connect != nil {
			p.connect.Merge(rep.Connect)
		}
		if rep.LastError != "" {
			p.lastErr = rep.LastError
		}
	}
	if p.failed > 0 {
		l.e.o.Logger.Warn("some clients failed to connect", slog.Int64("failed", p.failed), slog.String("lastError", p.lastErr))
	}
	return p, nil
}

// command is the same command for every worker.
func command(cmd string) func(int) string { return func(int) string { return cmd } }

func (l *workerLoad) connect(ctx context.Context) (*connectPhase, error) {
	return l.phase(ctx, command(cmdConnect), cmdConnect)
}

// reconnect gives each worker its share of the dialers.
func (l *workerLoad) reconnect(ctx context.Context, dialers int) (*connectPhase, error) {
	return l.phase(ctx, func(i int) string {
		return cmdReconnect + " " + strconv.Itoa(share(dialers, l.counts[i], l.e.o.Clients))
	}, cmdReconnect)
}

func (l *workerLoad) drop(ctx context.Context) error {
	_, err := l.all(ctx, command(cmdDrop), cmdDrop)
	return err
}

// sample sums the CPU of the workers and of this process.
func (l *workerLoad) sample() ProcSample {
	s := selfSample()
	if s.At.IsZero() {
		return s
	}
	for _, w := range l.workers {
		ws, err := ReadProc(w.c.pid())
		if err != nil {
			return ProcSample{}
		}
		s.CPU += ws.CPU
		s.RSS += ws.RSS
	}
	return s
}

func (l *workerLoad) processes() int { return len(l.workers) }

// close ends every worker, together.
func (l *workerLoad) close() {
	var wg sync.WaitGroup
	for _, w := range l.workers {
		wg.Go(w.stop)
	}
	wg.Wait()
	l.workers = nil
}
