package bench

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/client"
)

// target is the client method bench messages invoke.
const target = "bench"

// maxInflight bounds concurrent REST requests of the open-loop publisher; a
// message due while all are busy is skipped and counted as an error (the schedule
// does not wait for a slow server).
const maxInflight = 64

// drainTimeout bounds the wait for deliveries after the last publish.
const drainTimeout = 3 * time.Second

// runFanout is S1 (broadcast: every message to every client) and S3 (rest: each
// request to one user).
func runFanout(ctx context.Context, e *env) (*Result, error) {
	o := e.o
	base := e.sample()
	rv := newReceiver()
	var f *fleet
	var err error
	if e.rawOK() {
		// The receivers read their sockets themselves (see rawClient): through
		// client.Conn they cost the load generator, on the same 2 cores, more than the
		// server spends on a delivery.
		f, err = connectRaw(ctx, e, o.Clients, func(i int, c *rawClient) { c.readLoop(rv, i) }, dialRaw)
	} else {
		f, err = connectAll(ctx, e, o.Clients, func(i int, c *client.Conn) { c.On(target, rv.handler(i)) })
	}
	if err != nil {
		return nil, err
	}
	defer f.close()
	// Let the server settle (registration after the handshake, GC) before reading RSS.
	if !sleepCtx(ctx, 500*time.Millisecond) {
		return nil, ctx.Err()
	}
	connected := e.sample()

	p := &publisher{payload: strings.Repeat("x", o.Payload)}
	perMessage := int64(f.connected())
	if o.Scenario == Broadcast {
		p.send = func(ctx context.Context, args json.RawMessage) error {
			return e.mgmt.SendToAll(ctx, o.Hub, target, args, nil)
		}
		if o.Rate == 0 {
			rv.track = newTracker(f.connected())
		}
	} else {
		perMessage = 1
		var next atomic.Int64
		us := newUserSender(e.hc, e.endpoint, e.key, o.Hub, target)
		defer us.close()
		p.send = func(ctx context.Context, args json.RawMessage) error {
			// Round-robin over the users that are connected.
			for {
				i := int(next.Add(1)-1) % len(f.users)
				if f.live(i) {
					return us.send(ctx, f.users[i], args)
				}
			}
		}
	}
	// The open-loop broadcast publishes from a worker process (pubworker.go), so that
	// the answer times and skips it reads are not those of a publisher starved by the
	// receivers in this process.
	var pw *publishWorker
	if o.Scenario == Broadcast && o.Rate > 0 {
		if pw, err = startPublishWorker(ctx, e); err != nil {
			return nil, err
		}
		defer pw.stop()
	}
	var runErr error
	run := func(d time.Duration, window int) {
		switch {
		case pw != nil:
			cmd := cmdWarmup
			if p.counted.Load() {
				cmd = cmdMeasure
			}
			if err := pw.run(ctx, cmd, d, p); err != nil && runErr == nil {
				runErr = err
			}
		case o.Rate > 0:
			p.runRate(ctx, d, o.Rate)
		case o.Scenario == Broadcast:
			p.runWindow(ctx, d, window, rv.track)
		default:
			p.runCallers(ctx, d, window)
		}
	}
	window := o.Window
	if o.Scenario == REST {
		window = o.Callers
	}
	if o.Warmup > 0 {
		o.Logger.Info("warming up", slog.Duration("for", o.Warmup))
		run(o.Warmup, window)
	}
	// measure runs one window of load and returns its figures.
	measure := func(d time.Duration, window int) *Result {
		before, self0, pub0 := e.sample(), selfSample(), ProcSample{}
		if pw != nil {
			pub0 = pw.sample()
		}
		p.reset()
		ph := rv.begin(p.next)
		bad0 := rv.bad.Load()
		p.counted.Store(true)
		t0 := time.Now()
		run(d, window)
		p.counted.Store(false)
		expected := p.ok.Load() * perMessage
		// Wait for the deliveries still on their way.
		deadline := time.Now().Add(drainTimeout)
		for ph.delivered.Load() < expected && time.Now().Before(deadline) && ctx.Err() == nil {
			sleepCtx(ctx, 10*time.Millisecond)
		}
		after, self1, pub1 := e.sample(), selfSample(), ProcSample{}
		if pw != nil {
			pub1 = pw.sample()
		}
		r := &Result{Scenario: o.Scenario, Clients: o.Clients, RatePerS: o.Rate, DurationS: d.Seconds()}
		if o.Rate == 0 {
			r.Window = window
		}
		r.setLatency(ph.rec.Snapshot())
		r.Sent = p.ok.Load()
		r.Deliveries = ph.delivered.Load()
		elapsed := d
		if last := time.Unix(0, ph.last.Load()); last.Sub(t0) > elapsed {
			elapsed = last.Sub(t0)
		}
		r.DeliveriesPerS = float64(r.Deliveries) / elapsed.Seconds()
		r.addError("publish_failed", p.failed.Load())
		r.addError("publish_skipped", p.skipped.Load())
		r.addError("publish_refused", p.refused.Load())
		r.PublishMaxMs = ms(time.Duration(p.slowest.Load()))
		r.addError("missing_deliveries", expected-r.Deliveries)
		r.addError("bad_messages", rv.bad.Load()-bad0)
		if err := p.lastErr.Load(); err != nil && p.failed.Load() > 0 {
			o.Logger.Warn("publish failures", slog.Int64("failed", p.failed.Load()), slog.Any("lastError", err))
		}
		fillServer(r, base, connected, before, after, f.connected())
		fillLoadgen(r, self0.plus(pub0), self1.plus(pub1))
		if pw != nil {
			r.LoadgenProcesses = 2
			r.PublisherCPUPercent = cpuPercent(pub0, pub1)
		}
		return r
	}

	var r *Result
	if o.TargetP99 > 0 && o.Rate == 0 {
		r = searchWindow(ctx, e, measure)
	} else {
		load := "closed loop"
		if o.Rate > 0 {
			load = strconv.FormatFloat(o.Rate, 'f', -1, 64) + "/s"
		}
		o.Logger.Info("measuring", slog.String("scenario", o.Scenario), slog.String("load", load), slog.Duration("for", o.Duration))
		r = measure(o.Duration, window)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if runErr != nil {
		return nil, runErr
	}
	f.fill(r)
	r.addError("disconnected", f.disconnected(o.Logger))
	return r, nil
}

// searchWindow doubles the closed-loop window (1, 2, 4, ... 256) with steps of
// Duration/4 (at least 1 s) while p99 stays within TargetP99 without errors, and
// returns the step with the most deliveries/s that held (the first step when none
// did), with every step listed.
func searchWindow(ctx context.Context, e *env, measure func(time.Duration, int) *Result) *Result {
	o := e.o
	step := max(o.Duration/4, time.Second)
	target := float64(o.TargetP99.Nanoseconds()) / 1e6
	var best *Result
	var steps []Step
	for w := 1; w <= 256 && ctx.Err() == nil; w *= 2 {
		o.Logger.Info("measuring", slog.String("scenario", o.Scenario), slog.Int("window", w), slog.Duration("for", step))
		r := measure(step, w)
		steps = append(steps, Step{Window: w, DeliveriesPerS: r.DeliveriesPerS, P50Ms: r.P50Ms, P99Ms: r.P99Ms,
			ServerCPUUsPerDelivery: r.ServerCPUUsPerDelivery, Errors: r.Errors})
		held := r.P99Ms <= target && r.Errors == 0
		if best == nil || (held && r.DeliveriesPerS > best.DeliveriesPerS) {
			best = r
		}
		if !held {
			break
		}
	}
	best.Steps = steps
	best.TargetP99Ms = target
	best.TargetMet = best.P99Ms <= target && best.Errors == 0
	return best
}

// fillServer derives the server figures from its samples: RSS per connection from
// base (no clients) to connected, CPU from before to after.
func fillServer(r *Result, base, connected, before, after ProcSample, conns int) {
	if after.At.IsZero() {
		return
	}
	r.ServerRSSBytes = after.RSS
	if !base.At.IsZero() && !connected.At.IsZero() && conns > 0 {
		r.ServerRSSBytesPerConn = float64(connected.RSS-base.RSS) / float64(conns)
	}
	if before.At.IsZero() {
		return
	}
	cpu := after.CPU - before.CPU
	if wall := after.At.Sub(before.At); wall > 0 {
		r.ServerCPUPercent = 100 * cpu.Seconds() / wall.Seconds()
	}
	if r.Deliveries > 0 {
		r.ServerCPUUsPerDelivery = float64(cpu.Nanoseconds()) / 1000 / float64(r.Deliveries)
	}
}

// selfSample samples the bench process (zero when /proc is unreadable).
func selfSample() ProcSample {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		return ProcSample{}
	}
	return s
}

// fillLoadgen reports the load generator's own CPU use over the window: on a
// shared box it competes with the server.
func fillLoadgen(r *Result, before, after ProcSample) {
	r.LoadgenCPUPercent = cpuPercent(before, after)
}

// cpuPercent is the CPU a process used from before to after, in per cent of one
// core; 0 when either sample is missing.
func cpuPercent(before, after ProcSample) float64 {
	if before.At.IsZero() || after.At.IsZero() {
		return 0
	}
	if wall := after.At.Sub(before.At); wall > 0 {
		return 100 * (after.CPU - before.CPU).Seconds() / wall.Seconds()
	}
	return 0
}

// plus adds the CPU and RSS of another process sampled at about the same time; a
// missing sample (zero) adds nothing.
func (s ProcSample) plus(o ProcSample) ProcSample {
	if o.At.IsZero() || s.At.IsZero() {
		return s
	}
	s.CPU += o.CPU
	s.RSS += o.RSS
	return s
}

// sleepCtx sleeps for d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
