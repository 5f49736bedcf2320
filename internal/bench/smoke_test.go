package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/signalbox-io/signalbox/internal/bench"
)

// signalboxBin is the signalbox command, built once for the package: the bench
// starts it as its child server and floor server.
var signalboxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "signalbox-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	signalboxBin = filepath.Join(dir, "signalbox")
	build := exec.Command("go", "build", "-o", signalboxBin, "github.com/signalbox-io/signalbox/cmd/signalbox")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building signalbox:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := 0
	func() {
		defer func() { _ = os.RemoveAll(dir) }()
		code = m.Run()
		if code == 0 {
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				code = 1
			}
		}
	}()
	os.Exit(code)
}

func smokeOptions(t *testing.T, scenario string) bench.Options {
	t.Helper()
	return bench.Options{
		Scenario:      scenario,
		Clients:       20,
		Duration:      500 * time.Millisecond,
		Warmup:        200 * time.Millisecond,
		FloorDuration: 300 * time.Millisecond,
		ServerCmd:     []string{signalboxBin},
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func runSmoke(t *testing.T, o bench.Options) *bench.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := bench.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *r)
	if r.Scenario != o.Scenario || r.Clients != o.Clients || r.Protocol == "" {
		t.Fatalf("result names %q, %d clients, protocol %q", r.Scenario, r.Clients, r.Protocol)
	}
	if r.Errors != 0 {
		t.Fatalf("%d errors: %v", r.Errors, r.ErrorDetail)
	}
	if r.ServerRSSBytes <= 0 || r.ConnectP50Ms <= 0 {
		t.Fatalf("server RSS %d, connect p50 %g ms: not measured", r.ServerRSSBytes, r.ConnectP50Ms)
	}
	return r
}

func TestSmokeBroadcastOpenLoop(t *testing.T) {
	o := smokeOptions(t, bench.Broadcast)
	o.Rate = 100
	r := runSmoke(t, o)
	// 100 messages/s to 20 clients for 0.5 s, all delivered. The pacer may fall behind on a loaded
	// machine (race detector, other tests), never ahead: the lower bound only says it sent at all.
	if r.Sent < 10 || r.Sent > 55 || r.Deliveries != r.Sent*20 || r.RatePerS != 100 {
		t.Fatalf("sent %d, delivered %d at %g/s", r.Sent, r.Deliveries, r.RatePerS)
	}
	checkLatency(t, r)
	// The publisher is a worker process of its own, which read the answer times.
	if r.LoadgenProcesses != 2 || r.PublishMaxMs <= 0 {
		t.Fatalf("%d load-generator processes, slowest answer %g ms", r.LoadgenProcesses, r.PublishMaxMs)
	}
	if r.FloorDeliveriesPerS <= 0 || r.FloorRatio <= 0 || r.FloorRatio != r.DeliveriesPerS/r.FloorDeliveriesPerS {
		t.Fatalf("floor %g/s, ratio %g", r.FloorDeliveriesPerS, r.FloorRatio)
	}
	// The paced floor writes at the scenario's rate: never more than 100 messages/s to
	// each of the 20 clients (the saturated floor delivers far more).
	if r.FloorPacedDeliveriesPerS <= 0 || r.FloorPacedDeliveriesPerS > 1.2*100*20 || r.FloorPacedP99Ms <= 0 || r.FloorPacedP50Ms > r.FloorPacedP99Ms {
		t.Fatalf("paced floor %g/s, p50 %g ms, p99 %g ms", r.FloorPacedDeliveriesPerS, r.FloorPacedP50Ms, r.FloorPacedP99Ms)
	}
}

func TestSmokeClosedLoop(t *testing.T) {
	o := smokeOptions(t, bench.Broadcast)
	o.Protocol = "messagepack"
	o.NoFloor = true
	r := runSmoke(t, o)
	if r.Window != 8 || r.Sent < 1 || r.Deliveries != r.Sent*20 || r.FloorRatio != 0 || r.FloorPacedDeliveriesPerS != 0 {
		t.Fatalf("window %d: sent %d, delivered %d, floor ratio %g", r.Window, r.Sent, r.Deliveries, r.FloorRatio)
	}
	checkLatency(t, r)

	o = smokeOptions(t, bench.REST)
	o.Callers = 4
	r = runSmoke(t, o)
	if r.Window != 4 || r.Sent < 1 || r.Deliveries != r.Sent {
		t.Fatalf("rest: callers %d: sent %d, delivered %d", r.Window, r.Sent, r.Deliveries)
	}
	checkLatency(t, r)
}

func checkLatency(t *testing.T, r *bench.Result) {
	t.Helper()
	if r.DeliveriesPerS <= 0 || r.P50Ms <= 0 || r.P99Ms < r.P50Ms || r.MaxMs < r.P99Ms {
		t.Fatalf("deliveries/s %g, p50 %g, p99 %g, max %g", r.DeliveriesPerS, r.P50Ms, r.P99Ms, r.MaxMs)
	}
	if r.ServerCPUUsPerDelivery <= 0 {
		t.Fatalf("server CPU per delivery not measured")
	}
}

func TestSmokeIdleAndUpstream(t *testing.T) {
	o := smokeOptions(t, bench.Idle)
	o.Duration = 300 * time.Millisecond
	r := runSmoke(t, o)
	if r.ServerRSSBytesPerConn == 0 || r.Deliveries != 0 {
		t.Fatalf("idle: RSS/conn %g, deliveries %d", r.ServerRSSBytesPerConn, r.Deliveries)
	}

	o = smokeOptions(t, bench.Upstream)
	o.Clients = 5
	o.Duration = 500 * time.Millisecond
	r = runSmoke(t, o)
	if r.Deliveries == 0 || r.P50Ms <= 0 {
		t.Fatalf("upstream: %d round trips, p50 %g", r.Deliveries, r.P50Ms)
	}
}

// The upstream scenario open loop, and the connect scenario with its storm.
func TestSmokeUpstreamRateAndConnect(t *testing.T) {
	o := smokeOptions(t, bench.Upstream)
	o.Clients = 5
	o.Rate = 200
	r := runSmoke(t, o)
	if r.RatePerS != 200 || r.Sent < 50 || r.Deliveries == 0 {
		t.Fatalf("upstream open loop: rate %g, sent %d, done %d", r.RatePerS, r.Sent, r.Deliveries)
	}
	// The open loop ran on the raw clients, which time when their calls leave.
	if r.InvokeLateMaxMs <= 0 || r.InvokeLateP99Ms > r.InvokeLateMaxMs {
		t.Fatalf("calls left up to %g ms late (p99 %g ms): not measured", r.InvokeLateMaxMs, r.InvokeLateP99Ms)
	}
	// The function app is a worker process of its own, measured with the load generator
	// (its CPU may round to 0 in so short a window).
	if r.LoadgenProcesses != 2 || r.FunctionAppCPUPercent < 0 || r.LoadgenCPUPercent < r.FunctionAppCPUPercent {
		t.Fatalf("%d load-generator processes, function app %g %% of a core, load generator %g %%",
			r.LoadgenProcesses, r.FunctionAppCPUPercent, r.LoadgenCPUPercent)
	}

	o = smokeOptions(t, bench.Connect)
	r = runSmoke(t, o)
	if r.ConnectPerS <= 0 || r.StormSettleS <= 0 || r.Errors != 0 {
		t.Fatalf("connect: %g/s, storm %g s, errors %v", r.ConnectPerS, r.StormSettleS, r.ErrorDetail)
	}
}

// The connect scenario with more clients than one process may hold spreads them over
// worker processes; the figures are the same as from one process.
func TestSmokeConnectWorkers(t *testing.T) {
	o := smokeOptions(t, bench.Connect)
	o.Clients, o.ClientsPerProcess = 21, 10 // 3 workers: 7 clients each
	r := runSmoke(t, o)
	if r.LoadgenProcesses != 3 || r.Deliveries != 21 || r.ConnectPerS <= 0 || r.ConnectP99Ms < r.ConnectP50Ms {
		t.Fatalf("workers %d, %d connected at %g/s, p50 %g p99 %g ms", r.LoadgenProcesses, r.Deliveries, r.ConnectPerS, r.ConnectP50Ms, r.ConnectP99Ms)
	}
	if r.StormSettleS <= 0 || r.StormConnectP99Ms <= 0 || r.StormDrainS <= 0 || r.StormDrainS > r.StormSettleS {
		t.Fatalf("storm settled in %g s (drained in %g s), p99 %g ms", r.StormSettleS, r.StormDrainS, r.StormConnectP99Ms)
	}

	o.ClientsPerProcess = 21 // one process: the same figures, from this one
	r = runSmoke(t, o)
	if r.LoadgenProcesses != 1 || r.Deliveries != 21 || r.StormSettleS <= 0 {
		t.Fatalf("one process: %d processes, %d connected, storm %g s", r.LoadgenProcesses, r.Deliveries, r.StormSettleS)
	}
}

// A worker that fails says why, and the bench reports it.
func TestConnectWorkerFailure(t *testing.T) {
	o := smokeOptions(t, bench.Connect)
	o.Clients, o.ClientsPerProcess = 4, 2
	o.ServerURL, o.AccessKey = "http://127.0.0.1:1", "key" // nothing listens there
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := bench.Run(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "connect worker connect") {
		t.Fatalf("err = %v", err)
	}
}

// Every row of the suite has a name and a goal.
func TestSuiteRows(t *testing.T) {
	rows := bench.Suite()
	if len(rows) < 8 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, row := range rows {
		if row.Name == "" || row.Goal == "" {
			t.Errorf("row %+v", row)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := []bench.Options{
		{Scenario: "nope"},
		{Clients: bench.MaxClients + 1},
		{Clients: -1},
		{Duration: time.Millisecond},
		{Duration: time.Hour},
		{Rate: -1},
		{Window: -1},
		{Callers: 2000},
		{Scenario: bench.REST, TargetP99: time.Second},
		{Rate: 5, TargetP99: time.Second},
		{Payload: -1},
		{Protocol: "xml"},
		{ServerURL: "http://x"},
		{ServerURL: "ftp://x", AccessKey: "k"},
		{Scenario: bench.Upstream, ServerURL: "http://x", AccessKey: "k"},
		{ClientsPerProcess: -1},
		{ClientsPerProcess: bench.MaxClients + 1},
	}
	for _, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", o)
		}
	}
	var o bench.Options
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Scenario != bench.Broadcast || o.Clients != 1000 || o.Duration != 10*time.Second || o.Protocol != "json" || o.Rate != 0 || o.Window != 8 || o.Callers != 32 || o.ClientsPerProcess != bench.DefaultClientsPerProcess {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestSmokeTargetSearch(t *testing.T) {
	o := smokeOptions(t, bench.Broadcast)
	o.NoFloor = true
	o.Warmup = -1
	o.TargetP99 = time.Microsecond // unreachable: the search stops after its first step
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := bench.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 1 || r.Steps[0].Window != 1 || r.Window != 1 || r.TargetMet || r.TargetP99Ms != 0.001 {
		t.Fatalf("steps %+v, window %d, target %g met %v", r.Steps, r.Window, r.TargetP99Ms, r.TargetMet)
	}
	if r.Steps[0].DeliveriesPerS != r.DeliveriesPerS || r.Deliveries == 0 {
		t.Fatalf("step %+v, result %g/s", r.Steps[0], r.DeliveriesPerS)
	}
}

// The cluster scenario measures one node, then three nodes on Redis with the clients
// spread over them, and reports the cluster's share of one node's deliveries/s.
func TestSmokeCluster(t *testing.T) {
	url := os.Getenv("SIGNALBOX_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	if c, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0"), time.Second); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v", url, err)
		}
		t.Skipf("no redis at %s: %v", url, err)
	} else {
		c.Close()
	}
	o := smokeOptions(t, bench.Cluster)
	o.RedisURL = url
	o.Clients = 30
	r := runSmoke(t, o)
	if r.Nodes != 3 || r.Sent < 1 || r.Deliveries != r.Sent*30 || r.SingleDeliveriesPerS <= 0 ||
		r.ClusterRatio != r.DeliveriesPerS/r.SingleDeliveriesPerS {
		t.Fatalf("nodes %d, sent %d, delivered %d, one node %g/s, ratio %g", r.Nodes, r.Sent, r.Deliveries, r.SingleDeliveriesPerS, r.ClusterRatio)
	}
	checkLatency(t, r)
}
