package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/management"
	"github.com/signalbox-io/signalbox/protocol"
)

// Scenario names.
const (
	Broadcast = "broadcast" // S1: REST broadcast fan-out
	Upstream  = "upstream"  // S2: client invocations answered by an upstream function app
	REST      = "rest"      // S3: REST send-to-user
	Idle      = "idle"      // S4: idle connections
	Connect   = "connect"   // S5: connection rate and reconnect storm
	Cluster   = "cluster"   // broadcast through a cluster of nodes on Redis, against one node
)

// Scenarios lists every scenario.
var Scenarios = []string{Broadcast, Upstream, REST, Idle, Connect, Cluster}

// MaxClients keeps one process below its 20,000 open files (the server holds one
// socket per connection; so does the bench process per client, except in the connect
// scenario, whose clients are spread over worker processes of ClientsPerProcess each).
const MaxClients = 19000

// DefaultClientsPerProcess is the default of Options.ClientsPerProcess: a process of
// 9,000 WebSockets keeps its negotiate connections and a reconnect storm's sockets
// (old ones not yet closed, new ones dialing) well inside 20,000 open files.
const DefaultClientsPerProcess = 9000

// Options configures a run. Zero fields take the defaults named on each.
type Options struct {
	Scenario string        // one of Scenarios; default broadcast
	Clients  int           // default 1000, at most MaxClients
	Duration time.Duration // measured window; default 10 s, at most 10 min
	Warmup   time.Duration // before the window; default 2 s (negative = none)
	// Rate > 0 publishes open loop at Rate broadcast messages or REST requests per
	// second, and upstream invokes open loop at Rate invocations per second. 0 (the
	// default) runs closed loop to find what the server sustains: broadcast keeps
	// Window messages outstanding (a message completes when every client has it),
	// REST runs Callers concurrent request loops, upstream keeps one invocation in
	// flight per client.
	Rate    float64
	Window  int // default 8
	Callers int // default 32
	// TargetP99 > 0 (closed-loop broadcast) searches the window: it doubles from 1
	// in steps of Duration/4 while p99 stays within it, and reports the best step.
	TargetP99 time.Duration
	Payload   int    // bytes of the string argument; default 64
	Protocol  string // "json" (default) or "messagepack"
	Transport string // "websockets" (default), "sse" or "longpolling"

	// ServerURL and AccessKey target a running server instead of a child process;
	// its CPU and RSS are then measured only when ServerPID is given.
	ServerURL string
	AccessKey string
	ServerPID int

	// ServerCmd is the signalbox command (default: this executable); the bench
	// appends "serve ..." or "bench --floor-server". ServerEnv is added to its
	// environment.
	ServerCmd []string
	ServerEnv []string

	NoFloor            bool          // skip the raw floor measurement
	FloorDuration      time.Duration // default min(Duration, 5 s)
	ConnectConcurrency int           // parallel dialers; default 64
	// ClientsPerProcess bounds the clients of one load-generator process in the
	// connect scenario (default DefaultClientsPerProcess): with more clients than
	// this, they are spread evenly over worker processes (`bench --connect-worker`),
	// each of which holds one socket per client within its own open-file limit.
	ClientsPerProcess int
	// RedisURL is the Redis of the cluster scenario (default
	// redis://127.0.0.1:6379/0; each run uses keys of its own prefix) and Nodes its
	// number of nodes (default 3).
	RedisURL string
	Nodes    int
	Hub      string       // default "bench"
	Logger   *slog.Logger // progress at Info; nil = discard
}

// Validate fills in defaults and checks o.
func (o *Options) Validate() error {
	if o.Scenario == "" {
		o.Scenario = Broadcast
	}
	known := false
	for _, s := range Scenarios {
		known = known || s == o.Scenario
	}
	var errs []error
	if !known {
		errs = append(errs, fmt.Errorf("unknown scenario %q (want one of %s)", o.Scenario, strings.Join(Scenarios, ", ")))
	}
	if o.Clients == 0 {
		o.Clients = 1000
	}
	if o.Clients < 1 || o.Clients > MaxClients {
		errs = append(errs, fmt.Errorf("clients must be from 1 to %d (one process holds at most 20,000 open files), not %d", MaxClients, o.Clients))
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Duration < 100*time.Millisecond || o.Duration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("duration must be from 100ms to 10m, not %s", o.Duration))
	}
	switch {
	case o.Warmup == 0:
		o.Warmup = 2 * time.Second
	case o.Warmup < 0:
		o.Warmup = 0
	case o.Warmup > time.Minute:
		errs = append(errs, fmt.Errorf("warm-up must be at most 1m, not %s", o.Warmup))
	}
	if o.Window == 0 {
		o.Window = 8
	}
	if o.Window < 1 || o.Window > 1024 {
		errs = append(errs, fmt.Errorf("window must be from 1 to 1024, not %d", o.Window))
	}
	if o.Callers == 0 {
		o.Callers = 32
	}
	if o.TargetP99 < 0 || (o.TargetP99 > 0 && (o.Scenario != Broadcast || o.Rate > 0)) {
		errs = append(errs, errors.New("target-p99 needs the closed-loop broadcast scenario (no rate)"))
	}
	if o.Callers < 1 || o.Callers > 1024 {
		errs = append(errs, fmt.Errorf("callers must be from 1 to 1024, not %d", o.Callers))
	}
	if o.Rate < 0 || o.Rate > 1e6 {
		errs = append(errs, fmt.Errorf("rate must be from 0 to 1,000,000 per second, not %g", o.Rate))
	}
	if o.Payload == 0 {
		o.Payload = 64
	}
	if o.Payload < 0 || o.Payload > 512<<10 {
		errs = append(errs, fmt.Errorf("payload must be from 0 to 524288 bytes, not %d", o.Payload))
	}
	if o.Protocol == "" {
		o.Protocol = "json"
	}
	if _, ok := protocol.Lookup(o.Protocol); !ok {
		errs = append(errs, fmt.Errorf("unknown protocol %q (want json or messagepack)", o.Protocol))
	}
	switch strings.ToLower(o.Transport) {
	case "", "websockets", "ws":
		o.Transport = "websockets"
	case "sse", "serversentevents":
		o.Transport = "sse"
		if o.Protocol == "messagepack" {
			errs = append(errs, errors.New("the sse transport carries the json protocol only"))
		}
	case "longpolling", "lp":
		o.Transport = "longpolling"
	default:
		errs = append(errs, fmt.Errorf("unknown transport %q (want websockets, sse or longpolling)", o.Transport))
	}
	if (o.ServerURL == "") != (o.AccessKey == "") {
		errs = append(errs, errors.New("server-url and access-key go together"))
	}
	if o.ServerURL != "" {
		o.ServerURL = strings.TrimRight(o.ServerURL, "/")
		if !strings.HasPrefix(o.ServerURL, "http://") && !strings.HasPrefix(o.ServerURL, "https://") {
			errs = append(errs, fmt.Errorf("server-url %q is not an http(s) URL", o.ServerURL))
		}
		if o.Scenario == Upstream {
			errs = append(errs, errors.New("the upstream scenario needs the built-in server (its upstream is the bench's function app)"))
		}
		if o.Scenario == Cluster {
			errs = append(errs, errors.New("the cluster scenario starts its own nodes"))
		}
	}
	if len(o.ServerCmd) == 0 {
		exe, err := os.Executable()
		if err != nil {
			errs = append(errs, fmt.Errorf("locating the signalbox executable: %w", err))
		}
		o.ServerCmd = []string{exe}
	}
	if o.FloorDuration <= 0 {
		o.FloorDuration = min(o.Duration, 5*time.Second)
	}
	if o.ConnectConcurrency <= 0 {
		o.ConnectConcurrency = 64
	}
	if o.ClientsPerProcess == 0 {
		o.ClientsPerProcess = DefaultClientsPerProcess
	}
	if o.ClientsPerProcess < 1 || o.ClientsPerProcess > MaxClients {
		errs = append(errs, fmt.Errorf("clients per process must be from 1 to %d, not %d", MaxClients, o.ClientsPerProcess))
	}
	if o.Hub == "" {
		o.Hub = "bench"
	}
	if o.RedisURL == "" {
		o.RedisURL = "redis://127.0.0.1:6379/0"
	}
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(errs) > 0 {
		return fmt.Errorf("bench: %w", errors.Join(errs...))
	}
	return nil
}

// Result is one scenario's figures; the JSON names are the `signalbox bench --json`
// output other programs read (README.md, "signalbox bench"). Figures that were not
// measured are 0.
type Result struct {
	Scenario               string  `json:"scenario"`
	Clients                int     `json:"clients"`
	DeliveriesPerS         float64 `json:"deliveries_per_s"`
	P50Ms                  float64 `json:"p50_ms"`
	P99Ms                  float64 `json:"p99_ms"`
	ServerCPUUsPerDelivery float64 `json:"server_cpu_us_per_delivery"`
	ServerRSSBytesPerConn  float64 `json:"server_rss_bytes_per_conn"`
	Errors                 int64   `json:"errors"`
	FloorRatio             float64 `json:"floor_ratio"`

	Protocol     string  `json:"protocol"`
	Transport    string  `json:"transport"`
	PayloadBytes int     `json:"payload_bytes"`
	DurationS    float64 `json:"duration_s"`
	RatePerS     float64 `json:"rate_per_s,omitempty"` // offered publish/request rate (open loop)
	Window       int     `json:"window,omitempty"`     // closed loop: messages outstanding / REST callers
	Sent         int64   `json:"sent"`                 // messages, requests or invocations sent in the window
	// PublishMaxMs is the longest a broadcast or REST request of the window waited
	// for its answer (accepted, refused as overloaded, or failed).
	PublishMaxMs float64 `json:"publish_max_ms,omitempty"`
	Deliveries   int64   `json:"deliveries"` // received in the window (and its drain)
	P90Ms        float64 `json:"p90_ms"`
	MaxMs        float64 `json:"max_ms"`
	// The open-loop upstream scenario on raw clients: how late its calls left after
	// their due times, in the window (p99 and the most).
	InvokeLateP99Ms float64 `json:"invoke_late_p99_ms,omitempty"`
	InvokeLateMaxMs float64 `json:"invoke_late_max_ms,omitempty"`

	ServerCPUPercent  float64 `json:"server_cpu_percent"`  // of one core, over the window
	LoadgenCPUPercent float64 `json:"loadgen_cpu_percent"` // the bench process itself (and its connect, publish or function-app workers), same window
	// PublisherCPUPercent is the open-loop broadcast's publish worker (included in
	// LoadgenCPUPercent).
	PublisherCPUPercent float64 `json:"publisher_cpu_percent,omitempty"`
	// FunctionAppCPUPercent is the upstream scenario's function app, a worker process
	// (included in LoadgenCPUPercent).
	FunctionAppCPUPercent float64 `json:"function_app_cpu_percent,omitempty"`
	ServerRSSBytes        int64   `json:"server_rss_bytes"` // at the end
	ConnectPerS           float64 `json:"connect_per_s"`
	ConnectP50Ms          float64 `json:"connect_p50_ms"`
	ConnectP99Ms          float64 `json:"connect_p99_ms"`

	// The connect scenario: the load generator's CPU per connect (the bench and its
	// workers); the number of load-generator processes (1, or the workers; 2 for the
	// open-loop broadcast, whose publisher is a worker, and for upstream, whose
	// function app is one).
	LoadgenCPUUsPerDelivery float64 `json:"loadgen_cpu_us_per_delivery,omitempty"`
	LoadgenProcesses        int     `json:"loadgen_processes,omitempty"`

	FloorDeliveriesPerS   float64 `json:"floor_deliveries_per_s,omitempty"`
	FloorCPUUsPerDelivery float64 `json:"floor_cpu_us_per_delivery,omitempty"`
	// The paced floor (open-loop broadcast only): the floor server's writes at the
	// scenario's --rate, one loop writing each message to every connection, instead
	// of as fast as they go. At a low rate every write finds an idle reader and pays
	// for the whole loopback delivery; the saturated floor's writes mostly queue
	// behind a full receive window, and the reader's side sends them (see
	// docs/performance.md, S1).
	FloorPacedDeliveriesPerS   float64          `json:"floor_paced_deliveries_per_s,omitempty"`
	FloorPacedCPUUsPerDelivery float64          `json:"floor_paced_cpu_us_per_delivery,omitempty"`
	FloorPacedP50Ms            float64          `json:"floor_paced_p50_ms,omitempty"`
	FloorPacedP99Ms            float64          `json:"floor_paced_p99_ms,omitempty"`
	ErrorDetail                map[string]int64 `json:"error_detail,omitempty"`

	// With Options.TargetP99: the target, whether the reported step met it, and
	// every step of the search.
	TargetP99Ms float64 `json:"target_p99_ms,omitempty"`
	TargetMet   bool    `json:"target_met,omitempty"`
	Steps       []Step  `json:"steps,omitempty"`

	// The connect scenario's reconnect storm: every client dropped at once and
	// reconnected together; seconds until the last one was back.
	StormSettleS      float64 `json:"storm_settle_s,omitempty"`
	StormConnectP99Ms float64 `json:"storm_connect_p99_ms,omitempty"`
	// StormDrainS is the part of StormSettleS until the server had closed the dropped
	// connections, when the reconnect wave started (0: the server's open files are not
	// readable, and the wave started at once).
	StormDrainS float64 `json:"storm_drain_s,omitempty"`
	// StormDialers is how many clients of the storm dialed at once: every one, up to
	// 2,048, and fewer where the server's open files would not hold them.
	StormDialers int `json:"storm_dialers,omitempty"`

	// A row of the suite (Suite, `--scenario all`): its name, its goal and
	// whether this run met it.
	// The cluster scenario: its nodes, the single-node broadcast measured in the
	// same run with the same clients and load, and the cluster's share of it.
	Nodes                int     `json:"nodes,omitempty"`
	SingleDeliveriesPerS float64 `json:"single_deliveries_per_s,omitempty"`
	ClusterRatio         float64 `json:"cluster_ratio,omitempty"`

	Row     string `json:"row,omitempty"`
	Goal    string `json:"goal,omitempty"`
	GoalMet *bool  `json:"goal_met,omitempty"`
	Note    string `json:"note,omitempty"`
}

// Step is one window of a TargetP99 search.
type Step struct {
	Window                 int     `json:"window"`
	DeliveriesPerS         float64 `json:"deliveries_per_s"`
	P50Ms                  float64 `json:"p50_ms"`
	P99Ms                  float64 `json:"p99_ms"`
	ServerCPUUsPerDelivery float64 `json:"server_cpu_us_per_delivery"`
	Errors                 int64   `json:"errors"`
}

func (r *Result) addError(kind string, n int64) {
	if n <= 0 {
		return
	}
	if r.ErrorDetail == nil {
		r.ErrorDetail = map[string]int64{}
	}
	r.ErrorDetail[kind] += n
	r.Errors += n
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *Result) setLatency(h *Histogram) {
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = ms(h.Quantile(50)), ms(h.Quantile(90)), ms(h.Quantile(99)), ms(h.Max())
}

// env is the server a scenario runs against.
type env struct {
	o        *Options
	proto    protocol.Protocol
	endpoint string
	key      string
	pid      int // 0 = not measurable
	// A cluster: every node's endpoint (clients are spread over them; REST goes to
	// endpoint, the first) and process, sampled together.
	endpoints []string
	pids      []int
	hc        *http.Client
	mgmt      *management.Client
	tokens    *clientTokens
	firstUser int // a connect worker's first client: its users are u<firstUser+i>
	// The connect scenario's raw clients (newLocalLoad), shared by the env's copies
	// (the storm's) so that the dialers' negotiate connections outlive a phase.
	rawc     *rawConnector
	upstream *upstreamWorker // the upstream scenario's function app
}

// sample reads the server process; the zero ProcSample when it cannot.
func (e *env) sample() ProcSample {
	if len(e.pids) > 0 {
		return e.sampleAll()
	}
	if e.pid == 0 {
		return ProcSample{}
	}
	s, err := ReadProc(e.pid)
	if err != nil {
		e.o.Logger.Warn("cannot sample the server process", slog.Any("error", err))
		return ProcSample{}
	}
	return s
}

// Run runs the scenario of o against a child server (or o.ServerURL) and returns
// its result. ctx cancels the run; everything started is stopped before Run returns.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	proto, _ := protocol.Lookup(o.Protocol)
	r, err := runScenario(ctx, &o, proto)
	if err != nil {
		return nil, err
	}
	r.Protocol, r.Transport, r.PayloadBytes = o.Protocol, o.Transport, o.Payload
	// The floor runs once the server and the clients are gone, on the same number of
	// connections. It is a ceiling for fan-out, so only broadcast is compared to it.
	if o.Scenario == Broadcast && !o.NoFloor {
		fl, err := runFloor(ctx, &o, proto, r.Clients-int(r.ErrorDetail["connect_failed"]))
		if err != nil {
			return nil, err
		}
		r.FloorDeliveriesPerS = fl.deliveriesPerS
		r.FloorCPUUsPerDelivery = fl.cpuUsPerDelivery
		r.FloorPacedDeliveriesPerS, r.FloorPacedCPUUsPerDelivery = fl.pacedDeliveriesPerS, fl.pacedCPUUsPerDelivery
		if h := fl.pacedLatency; h != nil && h.Count() > 0 {
			r.FloorPacedP50Ms, r.FloorPacedP99Ms = ms(h.Quantile(50)), ms(h.Quantile(99))
		}
		r.FloorRatio = r.DeliveriesPerS / fl.deliveriesPerS
	}
	return r, nil
}

func runScenario(ctx context.Context, o *Options, proto protocol.Protocol) (*Result, error) {
	e := &env{o: o, proto: proto, hc: newHTTPClient(o.ConnectConcurrency + o.Clients), tokens: &clientTokens{}}
	defer e.hc.CloseIdleConnections()

	var upstreamURL string
	if o.Scenario == Upstream {
		e.key = newAccessKey()
		uw, err := startUpstreamWorker(ctx, o, e.key)
		if err != nil {
			return nil, err
		}
		defer uw.stop()
		e.upstream, upstreamURL = uw, uw.url
	}
	if o.ServerURL != "" {
		e.endpoint, e.key, e.pid = o.ServerURL, o.AccessKey, o.ServerPID
	} else {
		o.Logger.Info("starting the server", slog.String("command", o.ServerCmd[0]))
		sp, err := startServer(ctx, o, upstreamURL, e.key)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := sp.child.stop(); err != nil {
				o.Logger.Warn("stopping the server", slog.Any("error", err))
			}
			// The server logs at warn level: anything it said is worth seeing.
			if out := sp.child.stderr.String(); out != "" {
				o.Logger.Warn("server output (last 4 KiB)", slog.String("output", out))
			}
		}()
		e.endpoint, e.key, e.pid = sp.endpoint, sp.key, sp.child.pid()
	}
	var err error
	if e.mgmt, err = newManagementClient(e.endpoint, e.key, e.hc); err != nil {
		return nil, err
	}
	defer e.mgmt.Close()

	switch o.Scenario {
	case Cluster:
		return runCluster(ctx, e)
	case Broadcast, REST:
		return runFanout(ctx, e)
	case Upstream:
		return runUpstream(ctx, e)
	case Connect:
		return runConnect(ctx, e)
	}
	return runIdle(ctx, e)
}

// newManagementClient is the REST client of the server at endpoint, through hc.
func newManagementClient(endpoint, key string, hc *http.Client) (*management.Client, error) {
	ep, err := connection.NewEndpoint("", connection.Primary, "Endpoint="+endpoint+";AccessKey="+key+";Version=1.0;", nil)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	c, err := management.NewClient([]connection.Endpoint{ep}, &management.ClientOptions{HTTPClient: hc, Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return c, nil
}

// newHTTPClient keeps up to idle keep-alive connections, enough for the dialers,
// the publishers and one poll per long-polling client, so that requests do not
// leave thousands of sockets in TIME_WAIT. It has no overall timeout: event streams
// and polls last long; every other request has a context deadline.
func newHTTPClient(idle int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = idle
	t.MaxIdleConnsPerHost = idle
	return &http.Client{Transport: t}
}
