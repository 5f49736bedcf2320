package bench

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/client"
	"github.com/signalbox-io/signalbox/protocol"
)

// target is the client method bench messages invoke.
const target = "bench"

// maxInflight bounds concurrent REST requests of the publisher; a message due
// while all are busy is skipped and counted as an error (open loop: the schedule
// does not wait for a slow server).
const maxInflight = 64

// drainTimeout bounds the wait for deliveries after the last publish.
const drainTimeout = 3 * time.Second

// receiver records deliveries of bench messages.
type receiver struct {
	rec       Recorder
	delivered counter
	bad       counter
	last      atomic.Int64 // unix ns of the latest measured delivery
}

func (rv *receiver) handler(i int) func(args []protocol.Value) {
	return func(args []protocol.Value) {
		sent, seq, err := stamp(args)
		if err != nil {
			rv.bad.Add(1)
			return
		}
		if seq < 0 {
			return // warm-up
		}
		now := time.Now()
		rv.rec.Record(i, now.Sub(sent))
		rv.delivered.Add(1)
		rv.last.Store(now.UnixNano())
	}
}

// publisher sends messages at a fixed rate.
type publisher struct {
	rate    float64
	payload string
	send    func(ctx context.Context, seq int64, args json.RawMessage) error
	ok      atomic.Int64 // measured messages accepted
	failed  atomic.Int64
	skipped atomic.Int64
	lastErr atomic.Value
}

// run publishes for d; seq numbers start at first (negative = warm-up: every
// message gets seq -1 and nothing is counted).
func (p *publisher) run(ctx context.Context, d time.Duration, warmup bool) {
	sem := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	end := start.Add(d)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var sent int64
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		due := int64(now.Sub(start).Seconds() * p.rate)
		for ; sent <= due; sent++ {
			seq := sent
			if warmup {
				seq = -1
			}
			select {
			case sem <- struct{}{}:
			default:
				if !warmup {
					p.skipped.Add(1)
				}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				args := json.RawMessage(`[` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,` +
					strconv.FormatInt(seq, 10) + `,"` + p.payload + `"]`)
				err := p.send(ctx, seq, args)
				switch {
				case warmup:
				case err != nil:
					p.failed.Add(1)
					p.lastErr.Store(err)
				default:
					p.ok.Add(1)
				}
			}()
		}
		next := start.Add(time.Duration(float64(sent) / p.rate * float64(time.Second)))
		if next.After(end) {
			next = end
		}
		timer.Reset(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// runFanout is S1 (broadcast: every message to every client) and S3 (rest: each
// request to one user).
func runFanout(ctx context.Context, e *env) (*Result, error) {
	o := e.o
	base, _ := e.sample()
	rv := &receiver{}
	f, err := connectAll(ctx, e, o.Clients, func(i int, c *client.Conn) { c.On(target, rv.handler(i)) })
	if err != nil {
		return nil, err
	}
	defer f.close()
	// Let the server settle (registration after the handshake, GC) before reading RSS.
	if !sleepCtx(ctx, 500*time.Millisecond) {
		return nil, ctx.Err()
	}
	connected, _ := e.sample()

	p := &publisher{rate: o.Rate, payload: strings.Repeat("x", o.Payload)}
	perMessage := int64(f.connected())
	if o.Scenario == Broadcast {
		p.send = func(ctx context.Context, _ int64, args json.RawMessage) error {
			return e.mgmt.SendToAll(ctx, o.Hub, target, args, nil)
		}
	} else {
		perMessage = 1
		var next atomic.Int64
		p.send = func(ctx context.Context, _ int64, args json.RawMessage) error {
			// Round-robin over the users that are connected.
			for {
				i := int(next.Add(1)-1) % len(f.conns)
				if f.conns[i] != nil {
					return e.mgmt.SendToUser(ctx, o.Hub, f.users[i], target, args, nil)
				}
			}
		}
	}
	if o.Warmup > 0 {
		o.Logger.Info("warming up", slog.Duration("for", o.Warmup))
		p.run(ctx, o.Warmup, true)
	}
	o.Logger.Info("measuring", slog.String("scenario", o.Scenario), slog.Float64("rate", o.Rate), slog.Duration("for", o.Duration))
	before, _ := e.sample()
	t0 := time.Now()
	p.run(ctx, o.Duration, false)
	expected := p.ok.Load() * perMessage
	// Wait for the deliveries still on their way.
	deadline := time.Now().Add(drainTimeout)
	for rv.delivered.Load() < expected && time.Now().Before(deadline) && ctx.Err() == nil {
		sleepCtx(ctx, 10*time.Millisecond)
	}
	after, _ := e.sample()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	r := &Result{Scenario: o.Scenario, Clients: o.Clients, RatePerS: o.Rate, DurationS: o.Duration.Seconds()}
	f.fill(r)
	h := rv.rec.Snapshot()
	r.setLatency(h)
	r.Sent = p.ok.Load()
	r.Deliveries = rv.delivered.Load()
	window := o.Duration
	if last := time.Unix(0, rv.last.Load()); last.Sub(t0) > window {
		window = last.Sub(t0)
	}
	r.DeliveriesPerS = float64(r.Deliveries) / window.Seconds()
	r.addError("publish_failed", p.failed.Load())
	r.addError("publish_skipped", p.skipped.Load())
	r.addError("missing_deliveries", expected-r.Deliveries)
	r.addError("bad_messages", rv.bad.Load())
	r.addError("disconnected", f.disconnected())
	if err, ok := p.lastErr.Load().(error); ok {
		o.Logger.Warn("publish failures", slog.Int64("failed", p.failed.Load()), slog.Any("lastError", err))
	}
	fillServer(r, base, connected, before, after, f.connected())
	return r, nil
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
