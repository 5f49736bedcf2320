package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// The open-loop broadcast's publisher (the REST caller that stamps and numbers the
// messages) runs in a worker process of its own, `bench --publish-worker`, speaking the
// worker protocol of workers.go: in the bench's process it shared a scheduler with the
// receiving clients (10,000 of them at 91–94 % of a core in the overload row), so the
// answer times it read and the messages it skipped measured the bench's own starvation
// as much as the server (docs/performance.md, S1).

// Publish worker commands: publish at the configured rate for the duration given
// ("measure 5s"); only "measure" counts.
const (
	cmdWarmup  = "warmup"
	cmdMeasure = "measure"
)

// publishConfig is what a publish worker publishes, and to which server.
type publishConfig struct {
	Endpoint string  `json:"endpoint"`
	Key      string  `json:"key"` // stdin is private, argv is not
	Hub      string  `json:"hub"`
	Payload  int     `json:"payload"`
	Rate     float64 `json:"rate"`
}

// publishCounts is a publish worker's answer to a command: the publisher's counts
// for it (zero for a warm-up) and the sequence number its next message will have.
type publishCounts struct {
	Next      int64  `json:"next"`
	OK        int64  `json:"ok,omitempty"`
	Failed    int64  `json:"failed,omitempty"`
	Skipped   int64  `json:"skipped,omitempty"`
	Refused   int64  `json:"refused,omitempty"`
	SlowestNs int64  `json:"slowest_ns,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// ServePublishWorker runs `signalbox bench --publish-worker`: it broadcasts bench
// messages through the server's REST API at the configured rate, for each "warmup D"
// or "measure D" command, and answers with the counts. It returns when stdin reaches
// EOF, when ctx ends, or after 15 minutes.
func ServePublishWorker(ctx context.Context, stdin io.Reader, stdout io.Writer, logger *slog.Logger) error {
	return serveWorker(ctx, stdin, stdout, "publish", func(_ context.Context, line []byte, _ *workerReport) (workerHandler, func(), error) {
		var cfg publishConfig
		if err := json.Unmarshal(line, &cfg); err != nil {
			return nil, nil, fmt.Errorf("bench: publish worker configuration: %w", err)
		}
		if cfg.Rate <= 0 || cfg.Payload < 0 || cfg.Hub == "" {
			return nil, nil, fmt.Errorf("bench: publish worker: rate %g, payload %d, hub %q", cfg.Rate, cfg.Payload, cfg.Hub)
		}
		hc := newHTTPClient(maxInflight)
		mgmt, err := newManagementClient(cfg.Endpoint, cfg.Key, hc)
		if err != nil {
			hc.CloseIdleConnections()
			return nil, nil, err
		}
		p := &publisher{payload: strings.Repeat("x", cfg.Payload),
			send: func(ctx context.Context, args json.RawMessage) error {
				return mgmt.SendToAll(ctx, cfg.Hub, target, args, nil)
			}}
		cleanup := func() {
			mgmt.Close()
			hc.CloseIdleConnections()
		}
		return func(ctx context.Context, cmd, arg string) (workerReport, error) {
			rep := workerReport{Phase: cmd}
			d, err := time.ParseDuration(arg)
			if (cmd != cmdWarmup && cmd != cmdMeasure) || err != nil || d <= 0 {
				return rep, fmt.Errorf("bench: publish worker: command %q %q", cmd, arg)
			}
			p.reset()
			p.counted.Store(cmd == cmdMeasure)
			p.runRate(ctx, d, cfg.Rate)
			p.counted.Store(false)
			rep.Publish = p.counts()
			if p.failed.Load() > 0 {
				logger.Warn("publish failures", slog.Int64("failed", p.failed.Load()), slog.String("lastError", rep.Publish.LastError))
			}
			return rep, nil
		}, cleanup, nil
	})
}

// counts is p's figures as a publish worker reports them.
func (p *publisher) counts() *publishCounts {
	c := &publishCounts{Next: p.next, OK: p.ok.Load(), Failed: p.failed.Load(), Skipped: p.skipped.Load(),
		Refused: p.refused.Load(), SlowestNs: p.slowest.Load()}
	if err := p.lastErr.Load(); err != nil {
		c.LastError = err.Error()
	}
	return c
}

// publishWorker is the publish worker, seen from the bench.
type publishWorker struct {
	w *connectWorker
}

// startPublishWorker starts the publish worker of e's open-loop broadcast and waits
// until it is ready.
func startPublishWorker(ctx context.Context, e *env) (*publishWorker, error) {
	o := e.o
	w, _, err := startReadyWorker(ctx, o, "publish", publishConfig{Endpoint: e.endpoint, Key: e.key, Hub: o.Hub, Payload: o.Payload, Rate: o.Rate})
	if err != nil {
		return nil, err
	}
	return &publishWorker{w: w}, nil
}

// run has the worker publish for d (counted for cmdMeasure) and copies its figures
// into p, whose next number becomes the worker's.
func (pw *publishWorker) run(ctx context.Context, cmd string, d time.Duration, p *publisher) error {
	if _, err := io.WriteString(pw.w.c.stdin, cmd+" "+d.String()+"\n"); err != nil {
		return fmt.Errorf("bench: commanding the publish worker: %w", err)
	}
	// The last requests may be answered up to the management client's 10 s time-out
	// after the window.
	actx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	rep, err := pw.w.await(actx, cmd)
	if err != nil {
		return err
	}
	c := rep.Publish
	if c == nil {
		return fmt.Errorf("bench: the publish worker answered %q without counts", cmd)
	}
	p.next = c.Next
	p.ok.Store(c.OK)
	p.failed.Store(c.Failed)
	p.skipped.Store(c.Skipped)
	p.refused.Store(c.Refused)
	p.slowest.Store(c.SlowestNs)
	if c.LastError != "" {
		p.lastErr.Store(errors.New(c.LastError))
	}
	return nil
}

// sample is the worker's CPU (zero when it cannot be read).
func (pw *publishWorker) sample() ProcSample { return pw.w.sample() }

func (pw *publishWorker) stop() { pw.w.stop() }
