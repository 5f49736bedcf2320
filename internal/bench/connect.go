package bench

import (
	"context"
	"log/slog"
	"time"
)

// stormDialers bounds the dialers of a reconnect storm: every client at once, up to
// this many in flight (the listen backlog is 4,096 here).
const stormDialers = 2048

// runConnect is S5: the rate of full SignalR connects (negotiate, WebSocket upgrade,
// handshake) with ConnectConcurrency dialers, then a reconnect storm: every client
// drops at once and they all reconnect together; the storm settles when the last
// one is back.
func runConnect(ctx context.Context, e *env) (*Result, error) {
	o := e.o
	base := e.sample()
	before, self0 := e.sample(), selfSample()
	f, err := connectAll(ctx, e, o.Clients, nil)
	if err != nil {
		return nil, err
	}
	after, self1 := e.sample(), selfSample()
	r := &Result{Scenario: o.Scenario, Clients: o.Clients, DurationS: f.elapsed.Seconds()}
	f.fill(r)
	r.Sent = int64(o.Clients)
	// Set before fillServer, which divides the server's CPU by it: the CPU per
	// connect is the figure a busy machine does not distort much.
	r.Deliveries = int64(f.connected())
	fillServer(r, base, after, before, after, f.connected())
	fillLoadgen(r, self0, self1)
	r.DeliveriesPerS = r.ConnectPerS
	r.P50Ms, r.P99Ms = r.ConnectP50Ms, r.ConnectP99Ms

	o.Logger.Info("reconnect storm", slog.Int("clients", f.connected()))
	start := time.Now()
	f.close()
	storm := *o
	storm.ConnectConcurrency = min(o.Clients, stormDialers)
	se := *e
	se.o = &storm
	f2, err := connectAll(ctx, &se, o.Clients, nil)
	if err != nil {
		return nil, err
	}
	defer f2.close()
	r.StormSettleS = time.Since(start).Seconds()
	r.StormConnectP99Ms = ms(f2.connect.Quantile(99))
	r.addError("storm_connect_failed", f2.failed)
	return r, nil
}
