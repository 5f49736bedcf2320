package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	srv  *stubServer
	url  string
	done chan struct{}
}

// startUpstreamStub serves the function app on a free loopback port.
func startUpstreamStub(key, hub string) (*upstreamStub, error) {
	return startFunctionApp(key, hub, func(ctx context.Context, ic *functions.InvocationContext) (any, error) {
		if len(ic.Arguments) == 0 {
			return nil, errors.New("echo needs an argument")
		}
		return ic.Arguments[0], nil
	})
}

// startFunctionApp serves a function app on a free loopback port whose hub's echo is echo (the
// tests' function apps answer wrongly on purpose).
func startFunctionApp(key, hub string, echo functions.MessageFunc) (*upstreamStub, error) {
	trigger, err := functions.NewTrigger(functions.TriggerOptions{AccessKeys: []string{key}})
	if err != nil {
		return nil, fmt.Errorf("bench: upstream stub: %w", err)
	}
	if err := trigger.Register(hub, functions.CategoryMessages, "echo", echo); err != nil {
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
		srv:  newStubServer(ln, trigger),
		url:  stubURL(ln.Addr().String()),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		s.srv.serve()
	}()
	return s, nil
}

// stubURL is the upstream URL of a function app listening on addr.
func stubURL(addr string) string { return "http://" + addr + functions.TriggerPath }

func (s *upstreamStub) close() {
	s.srv.close()
	<-s.done
}

// dueCall is one call of the open loop: from client i, counted from due.
type dueCall struct {
	i   int
	due time.Time
}

// maxParkedCallers bounds the open loop's idle caller goroutines.
const maxParkedCallers = 4096

// openLoopTick is the open loop's scheduling granularity: calls due within a tick leave
// together at its end.
const openLoopTick = time.Millisecond

// runUpstream is S2: the clients invoke echo, in a closed loop (one call in flight
// per client) or, with Rate, open loop at Rate calls per second; the server forwards
// each call to the stub and relays the result. The open loop runs on raw clients
// (rawUpstream) where they speak the transport and protocol (e.rawOK); the closed
// loop, and the other transports and MessagePack, use client.Conn.
func runUpstream(ctx context.Context, e *env) (*Result, error) {
	o := e.o
	base := e.sample()
	t := &upstreamTally{}
	var (
		f   *fleet
		g   *rawUpstream
		err error
	)
	if o.Rate > 0 && e.rawOK() {
		g = newRawUpstream(t, o.Clients, o.Payload, upstreamCallTimeout)
		f, err = connectRaw(ctx, e, o.Clients, g.read, dialRaw)
	} else {
		f, err = connectAll(ctx, e, o.Clients, nil)
	}
	if err != nil {
		return nil, err
	}
	defer f.close()
	if !sleepCtx(ctx, 500*time.Millisecond) {
		return nil, ctx.Err()
	}
	connected := e.sample()

	var (
		wg      sync.WaitGroup
		payload = strings.Repeat("x", o.Payload)
	)
	runCtx, stopRuns := context.WithCancel(ctx)
	defer stopRuns()
	// invoke makes one call from client i; latency counts from due, the time the call
	// was scheduled (open loop), so a server that falls behind is not flattered. The
	// echo must return its first argument.
	invoke := func(i int, c *client.Conn, due time.Time) error {
		cctx, cancel := context.WithTimeout(runCtx, upstreamCallTimeout)
		v, err := c.Invoke(cctx, "echo", due.UnixNano(), payload)
		cancel()
		if err == nil {
			if got, verr := int64Arg(v); verr != nil || got != due.UnixNano() {
				err = fmt.Errorf("bench: echo returned %.40s, not its argument %d", v.String(), due.UnixNano())
			}
		}
		if !t.measure.Load() {
			return err
		}
		switch {
		case err == nil:
			t.rec.Record(i, time.Since(due))
			t.done.Add(1)
		case runCtx.Err() != nil:
		default:
			// Refusals are most of the failures under overload: told apart by the
			// completion's text, without formatting the error.
			var ie *client.InvocationError
			if errors.As(err, &ie) && strings.Contains(ie.Message, "overloaded") {
				t.refused(func() error { return err })
			} else {
				t.fail(1, err)
			}
		}
		return err
	}
	switch {
	case g != nil:
		g.start(f.raw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.run(runCtx, o.Rate)
		}()
	case o.Rate > 0:
		// Open loop: calls leave at Rate per second whatever the answers do, spread
		// over the clients in turn; a client may have several calls in flight.
		live := make([]int, 0, len(f.conns))
		for i, c := range f.conns {
			if c != nil {
				live = append(live, i)
			}
		}
		// Callers park after a call (up to maxParkedCallers) and take the next one, so
		// a call never waits for a free caller (the loop stays open) and its goroutine's
		// stack has already grown to fit the client's send path: a new goroutine per
		// call grew and copied its stack every time, which showed in profiles of the
		// bench process.
		calls := make(chan dueCall)
		var parked atomic.Int32
		caller := func(c dueCall) {
			defer wg.Done()
			for {
				_ = invoke(c.i, f.conns[c.i], c.due)
				if parked.Add(1) > maxParkedCallers {
					parked.Add(-1)
					return
				}
				select {
				case c = <-calls:
					parked.Add(-1)
				case <-runCtx.Done():
					parked.Add(-1)
					return
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The scheduler wakes at most every openLoopTick and starts every call that
			// is due by then: a timer per call (12,000 wake-ups a second at the S2 rate)
			// took the CPU the server shares with the bench. A call starts at most a tick
			// late, and its latency still counts from its due time.
			interval := time.Duration(float64(time.Second) / o.Rate)
			next := time.Now()
			tick := time.NewTimer(0)
			defer tick.Stop()
			for k := 0; runCtx.Err() == nil; {
				for now := time.Now(); !next.After(now); k++ {
					c := dueCall{i: live[k%len(live)], due: next}
					select {
					case calls <- c: // a parked caller takes it
					default:
						wg.Add(1)
						go caller(c)
					}
					next = next.Add(interval)
				}
				tick.Reset(max(time.Until(next), openLoopTick))
				select {
				case <-runCtx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	default:
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
	before, self0, app0 := e.sample(), selfSample(), e.upstream.sample()
	t.measure.Store(true)
	sleepCtx(ctx, o.Duration)
	t.measure.Store(false)
	after, self1, app1 := e.sample(), selfSample(), e.upstream.sample()
	stopRuns()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	r := &Result{Scenario: o.Scenario, Clients: o.Clients, DurationS: o.Duration.Seconds()}
	f.fill(r)
	t.fill(r, o.Duration, o.Logger)
	r.RatePerS = o.Rate
	if g != nil && g.late.Count() > 0 {
		r.InvokeLateP99Ms, r.InvokeLateMaxMs = ms(g.late.Quantile(99)), ms(g.late.Max())
	}
	r.addError("disconnected", f.disconnected(o.Logger))
	fillServer(r, base, connected, before, after, f.connected())
	fillLoadgen(r, self0.plus(app0), self1.plus(app1))
	r.LoadgenProcesses = 2
	r.FunctionAppCPUPercent = cpuPercent(app0, app1)
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
