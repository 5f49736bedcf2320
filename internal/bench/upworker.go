package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
)

// The upstream scenario's function app runs in a worker process of its own, `bench
// --upstream-worker`, speaking the worker protocol of workers.go. In the bench's
// process it shared one Go scheduler with the 1,000 clients: when they fell behind
// an open loop of twice what the server sustains (tens of thousands of calls waiting
// for their answers), the function app's connection goroutines waited in the same
// run queue, its answers took 0.1–1 s although the handler ran for ~10 µs, and the
// server's per-event cap (250 calls in flight) then admitted 250 per round trip: a
// few hundred calls a second (docs/performance.md, S2). A Functions host is a process
// of its own; so is this one, and the kernel schedules it as one.

// upstreamConfig is the function app a worker serves: with Key checking the
// signatures, for Hub. It listens on a free loopback port, which its "ready" report
// gives as the upstream URL.
type upstreamConfig struct {
	Key string `json:"key"` // stdin is private, argv is not
	Hub string `json:"hub"`
}

// ServeUpstreamWorker runs `signalbox bench --upstream-worker`: the upstream
// scenario's function app (upstreamStub) on the configured address, from "ready"
// until stdin reaches EOF, ctx ends, or 15 minutes have passed. It takes no command.
func ServeUpstreamWorker(ctx context.Context, stdin io.Reader, stdout io.Writer, _ *slog.Logger) error {
	defer setFunctionAppRuntime()()
	return serveWorker(ctx, stdin, stdout, "upstream", func(_ context.Context, line []byte, ready *workerReport) (workerHandler, func(), error) {
		var cfg upstreamConfig
		if err := json.Unmarshal(line, &cfg); err != nil {
			return nil, nil, fmt.Errorf("bench: upstream worker configuration: %w", err)
		}
		stub, err := startUpstreamStub(cfg.Key, cfg.Hub)
		if err != nil {
			return nil, nil, err
		}
		ready.URL = stub.url
		return func(_ context.Context, cmd, _ string) (workerReport, error) {
			return workerReport{Phase: cmd}, fmt.Errorf("bench: upstream worker: unknown command %q", cmd)
		}, stub.close, nil
	})
}

// Go runtime settings of the function app's process. It shares the two cores with
// the server under test, and what it spends per call the server does not get: with
// one P its connection goroutines run on one thread, without the idle second P's
// spinning thread looking for work after every wake-up (futex wake-ups and
// scheduler passes), and its garbage (a few hundred bytes per call, a heap of a few
// MB) is collected a fifth as often, each cycle scanning and shrinking the 1,000
// connection goroutines' stacks, which then grew again. Together they took the
// function app from ~40 to ~28 µs of CPU per call at 12,000 calls/s
// (docs/performance.md, S2, "Function app, 2026-12-03 evening"). One core is more
// than it needs: ~35 % of one at the server's most.
const (
	functionAppProcs     = 1
	functionAppGCPercent = 400
)

// setFunctionAppRuntime applies the function app's runtime settings and returns
// what restores the previous ones.
func setFunctionAppRuntime() (restore func()) {
	procs := runtime.GOMAXPROCS(functionAppProcs)
	gc := debug.SetGCPercent(functionAppGCPercent)
	return func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
	}
}

// upstreamWorker is the function app's worker process, seen from the bench.
type upstreamWorker struct {
	w   *connectWorker
	url string
}

// startUpstreamWorker starts the function app of the upstream scenario, checking
// signatures made with key, and waits until it listens.
func startUpstreamWorker(ctx context.Context, o *Options, key string) (*upstreamWorker, error) {
	w, rep, err := startReadyWorker(ctx, o, "upstream", upstreamConfig{Key: key, Hub: o.Hub})
	if err != nil {
		return nil, err
	}
	if rep.URL == "" {
		w.stop()
		return nil, errors.New("bench: upstream worker: no URL in its ready report")
	}
	return &upstreamWorker{w: w, url: rep.URL}, nil
}

// sample is the worker's CPU (zero when it cannot be read, or without a worker).
func (uw *upstreamWorker) sample() ProcSample {
	if uw == nil {
		return ProcSample{}
	}
	return uw.w.sample()
}

func (uw *upstreamWorker) stop() { uw.w.stop() }
