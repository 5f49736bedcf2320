package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/client"
	"github.com/signalbox-io/signalbox/functions"
)

// upstreamStub is the function app of the upstream scenario: the bench hub's
// echo(x, ...) returns x; connection events are accepted.
type upstreamStub struct {
	srv  *http.Server
	url  string
	done chan struct{}
}

func startUpstreamStub(key, hub string) (*upstreamStub, error) {
	trigger, err := functions.NewTrigger(functions.TriggerOptions{AccessKeys: []string{key}})
	if err != nil {
		return nil, fmt.Errorf("bench: upstream stub: %w", err)
	}
	echo := func(ctx context.Context, ic *functions.InvocationContext) (any, error) {
		if len(ic.Arguments) == 0 {
			return nil, errors.New("echo needs an argument")
		}
		return ic.Arguments[0], nil
	}
	if err := trigger.Register(hub, functions.CategoryMessages, "echo", functions.MessageFunc(echo)); err != nil {
		return nil, fmt.Errorf("bench: upstream stub: %w", err)
	}
	// Connection events are part of the load (the server sends them for every
	// client); accept them.
	trigger.HandleConnected(hub, func(context.Context, *functions.InvocationContext) error { return nil })
	trigger.HandleDisconnected(hub, func(context.Context, *functions.InvocationContext) error { return nil })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: upstream stub: %w", err)
	}
	s := &upstreamStub{
		srv:  &http.Server{Handler: trigger, ReadHeaderTimeout: 10 * time.Second},
		url:  "http://" + ln.Addr().String() + functions.TriggerPath,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *upstreamStub) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

// runUpstream is S2: the clients invoke echo, in a closed loop (one call in flight
// per client) or, with Rate, open loop at Rate calls per second; the server forwards
// each call to the stub and relays the result.
func runUpstream(ctx context.Context, e *env) (*Result, error) {
	o := e.o
	base := e.sample()
	f, err := connectAll(ctx, e, o.Clients, nil)
	if err != nil {
		return nil, err
	}
	defer f.close()
	if !sleepCtx(ctx, 500*time.Millisecond) {
		return nil, ctx.Err()
	}
	connected := e.sample()

	var (
		rec     Recorder
		done    counter
		failed  counter
		lastErr lastError
		measure atomic.Bool
		wg      sync.WaitGroup
		payload = strings.Repeat("x", o.Payload)
	)
	runCtx, stopRuns := context.WithCancel(ctx)
	defer stopRuns()
	// invoke makes one call from client i; latency counts from due, the time the call
	// was scheduled (open loop), so a server that falls behind is not flattered.
	var overloaded counter
	invoke := func(i int, c *client.Conn, due time.Time) error {
		cctx, cancel := context.WithTimeout(runCtx, 10*time.Second)
		_, err := c.Invoke(cctx, "echo", due.UnixNano(), payload)
		cancel()
		if !measure.Load() {
			return err
		}
		switch {
		case err == nil:
			rec.Record(i, time.Since(due))
			done.Add(1)
		case runCtx.Err() != nil:
		default:
			failed.Add(1)
			lastErr.Store(err)
			if strings.Contains(strings.ToLower(err.Error()), "overloaded") {
				overloaded.Add(1)
			}
		}
		return err
	}
	if o.Rate > 0 {
		// Open loop: calls leave at Rate per second whatever the answers do, spread
		// over the clients in turn; a client may have several calls in flight.
		live := make([]int, 0, len(f.conns))
		for i, c := range f.conns {
			if c != nil {
				live = append(live, i)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			interval := time.Duration(float64(time.Second) / o.Rate)
			next := time.Now()
			for k := 0; runCtx.Err() == nil; k++ {
				if d := time.Until(next); d > 0 {
					select {
					case <-runCtx.Done():
						return
					case <-time.After(d):
					}
				}
				i := live[k%len(live)]
				due := next
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = invoke(i, f.conns[i], due)
				}()
				next = next.Add(interval)
			}
		}()
	} else {
		for i, c := range f.conns {
			if c == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for runCtx.Err() == nil {
					err := invoke(i, c, time.Now())
					if errors.Is(err, client.ErrClosed) && runCtx.Err() == nil {
						return
					}
				}
			}()
		}
	}
	if o.Warmup > 0 {
		o.Logger.Info("warming up", slog.Duration("for", o.Warmup))
		sleepCtx(ctx, o.Warmup)
	}
	o.Logger.Info("measuring", slog.String("scenario", o.Scenario), slog.Duration("for", o.Duration))
	before, self0 := e.sample(), selfSample()
	measure.Store(true)
	sleepCtx(ctx, o.Duration)
	measure.Store(false)
	after, self1 := e.sample(), selfSample()
	stopRuns()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	r := &Result{Scenario: o.Scenario, Clients: o.Clients, DurationS: o.Duration.Seconds()}
	f.fill(r)
	r.setLatency(rec.Snapshot())
	r.Deliveries = done.Load()
	r.Sent = r.Deliveries + failed.Load()
	r.DeliveriesPerS = float64(r.Deliveries) / o.Duration.Seconds()
	r.RatePerS = o.Rate
	r.addError("invoke_overloaded", overloaded.Load())
	r.addError("invoke_failed", failed.Load()-overloaded.Load())
	r.addError("disconnected", f.disconnected(o.Logger))
	if err := lastErr.Load(); err != nil {
		o.Logger.Warn("invocation failures", slog.Int64("failed", failed.Load()), slog.Any("lastError", err))
	}
	fillServer(r, base, connected, before, after, f.connected())
	fillLoadgen(r, self0, self1)
	return r, nil
}

// runIdle is S4: connect the clients, let them sit, and measure the server's
// memory per connection and its CPU while idle.
func runIdle(ctx context.Context, e *env) (*Result, error) {
	o := e.o
	base := e.sample()
	f, err := connectAll(ctx, e, o.Clients, nil)
	if err != nil {
		return nil, err
	}
	defer f.close()
	if !sleepCtx(ctx, max(o.Warmup, 500*time.Millisecond)) {
		return nil, ctx.Err()
	}
	before, self0 := e.sample(), selfSample()
	o.Logger.Info("holding idle connections", slog.Int("clients", f.connected()), slog.Duration("for", o.Duration))
	if !sleepCtx(ctx, o.Duration) {
		return nil, ctx.Err()
	}
	after, self1 := e.sample(), selfSample()
	r := &Result{Scenario: o.Scenario, Clients: o.Clients, DurationS: o.Duration.Seconds()}
	f.fill(r)
	r.addError("disconnected", f.disconnected(o.Logger))
	// RSS per connection at the end of the hold (it includes any growth while idle).
	fillServer(r, base, after, before, after, f.connected())
	fillLoadgen(r, self0, self1)
	return r, nil
}
