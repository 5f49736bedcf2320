package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/management"
)

// runCluster measures the broadcast of one node, then the same load through a
// cluster of o.Nodes nodes on Redis with the clients spread over them and the REST
// calls made to the first: the cluster's deliveries/s as a share of one node's.
// e is the single node runScenario started.
func runCluster(ctx context.Context, e *env) (*Result, error) {
	o := *e.o
	o.Scenario = Broadcast
	single := *e
	single.o = &o
	o.Logger.Info("cluster scenario: one node first")
	one, err := runFanout(ctx, &single)
	if err != nil {
		return nil, fmt.Errorf("bench: single node: %w", err)
	}

	var p [6]byte
	_, _ = rand.Read(p[:])
	prefix := "bench-" + hex.EncodeToString(p[:])
	ce := &env{o: &o, proto: e.proto, key: e.key, hc: e.hc, tokens: e.tokens}
	for i := range o.Nodes {
		sp, err := startServer(ctx, &o, "", e.key, "--redis-url", o.RedisURL, "--redis-prefix", prefix,
			"--node-id", fmt.Sprintf("bench%d", i), "--node-timeout", "5s")
		if err != nil {
			return nil, fmt.Errorf("bench: cluster node %d: %w", i, err)
		}
		defer func() {
			if err := sp.child.stop(); err != nil {
				o.Logger.Warn("stopping a cluster node", slog.Any("error", err))
			}
			if out := sp.child.stderr.String(); out != "" {
				o.Logger.Warn("cluster node output (last 4 KiB)", slog.String("output", out))
			}
		}()
		ce.endpoints = append(ce.endpoints, sp.endpoint)
		ce.pids = append(ce.pids, sp.child.pid())
	}
	ce.endpoint = ce.endpoints[0]
	for _, ep := range ce.endpoints {
		if err := waitReady(ctx, ep); err != nil {
			return nil, err
		}
	}
	ep, err := connection.NewEndpoint("", connection.Primary, "Endpoint="+ce.endpoint+";AccessKey="+ce.key+";Version=1.0;", nil)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	ce.mgmt, err = management.NewClient([]connection.Endpoint{ep}, &management.ClientOptions{HTTPClient: ce.hc, Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer ce.mgmt.Close()
	o.Logger.Info("cluster scenario: the cluster", slog.Int("nodes", o.Nodes), slog.String("redis", o.RedisURL))
	r, err := runFanout(ctx, ce)
	if err != nil {
		return nil, fmt.Errorf("bench: cluster: %w", err)
	}
	r.Scenario, r.Nodes = Cluster, o.Nodes
	r.SingleDeliveriesPerS = one.DeliveriesPerS
	if one.DeliveriesPerS > 0 {
		r.ClusterRatio = r.DeliveriesPerS / one.DeliveriesPerS
	}
	return r, nil
}

// waitReady polls a node's /readyz (every 50 ms, at most 15 s): a cluster node is
// ready once it is subscribed and registered.
func waitReady(ctx context.Context, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/readyz", nil)
		if res, err := hc.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return fmt.Errorf("bench: cluster node %s not ready: %w", endpoint, ctx.Err())
		}
	}
}

// sampleAll adds up the samples of every node of a cluster.
func (e *env) sampleAll() ProcSample {
	var sum ProcSample
	for _, pid := range e.pids {
		s, err := ReadProc(pid)
		if err != nil {
			e.o.Logger.Warn("cannot sample a cluster node", slog.Any("error", err))
			return ProcSample{}
		}
		sum.At, sum.CPU, sum.RSS = s.At, sum.CPU+s.CPU, sum.RSS+s.RSS
	}
	return sum
}
