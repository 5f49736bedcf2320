package bench

import (
	"context"
	"log/slog"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

// stormDialers bounds the dialers of a reconnect storm: every client at once, up to
// this many in flight (the listen backlog is 4,096 here), and fewer when the server's
// open files would not hold them (stormDialersFor).
const stormDialers = 2048

// fileReserve is what stormDialersFor leaves of the server's open files besides the
// clients' sockets and the dialers' connections.
const fileReserve = 256

// stormDialersFor returns the dialers of a storm of n clients against a server that
// holds files open files now (its clients dropped) and may hold limit (0 = unknown or
// unlimited). Each dialer keeps its negotiate connection open between its clients (an
// idle keep-alive, as a client's browser keeps it), so that at the end of the storm the
// server holds n WebSockets plus one connection per dialer: 19,000 clients with 2,048
// dialers passed the 20,000 open files of a process here.
func stormDialersFor(n, files, limit int) int {
	d := min(n, stormDialers)
	if limit > 0 {
		d = min(d, max(limit-files-n-fileReserve, 64))
	}
	return d
}

// runConnect is S5: the rate of full SignalR connects (negotiate, WebSocket upgrade,
// handshake) with ConnectConcurrency dialers, then a reconnect storm: every client
// drops at once and they all reconnect together; the storm settles when the last
// one is back. More clients than Options.ClientsPerProcess are spread over worker
// processes (workers.go); fewer are connected by this process.
func runConnect(ctx context.Context, e *env) (*Result, error) {
	o := e.o
	var ld connectLoad
	if n := (o.Clients + o.ClientsPerProcess - 1) / o.ClientsPerProcess; n > 1 {
		w, err := startConnectWorkers(ctx, e, n)
		if err != nil {
			return nil, err
		}
		ld = w
	} else {
		l, err := newLocalLoad(e)
		if err != nil {
			return nil, err
		}
		ld = l
	}
	defer ld.close()
	r := &Result{Scenario: o.Scenario, Clients: o.Clients, LoadgenProcesses: ld.processes()}

	base := e.sample()
	before, lg0 := e.sample(), ld.sample()
	start := time.Now()
	p, err := ld.connect(ctx)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	after, lg1 := e.sample(), ld.sample()
	filesConnected := e.openFiles()
	r.DurationS = elapsed.Seconds()
	p.fill(r, elapsed)
	r.Sent = int64(o.Clients)
	// Set before fillServer, which divides the server's CPU by it: the CPU per
	// connect is the figure a busy machine does not distort much.
	r.Deliveries = int64(p.connected)
	fillServer(r, base, after, before, after, p.connected)
	fillLoadgen(r, lg0, lg1)
	if p.connected > 0 && !lg0.At.IsZero() && !lg1.At.IsZero() {
		r.LoadgenCPUUsPerDelivery = float64((lg1.CPU - lg0.CPU).Nanoseconds()) / 1000 / float64(p.connected)
	}
	r.DeliveriesPerS = r.ConnectPerS
	r.P50Ms, r.P99Ms = r.ConnectP50Ms, r.ConnectP99Ms

	o.Logger.Info("reconnect storm", slog.Int("clients", p.connected))
	start = time.Now()
	if err := ld.drop(ctx); err != nil {
		return nil, err
	}
	dialers := min(o.Clients, stormDialers)
	if filesConnected > 0 {
		files := e.awaitFiles(ctx, filesConnected-p.connected+drainSlack)
		r.StormDrainS = time.Since(start).Seconds()
		dialers = stormDialersFor(o.Clients, files, e.fileLimit())
	}
	r.StormDialers = dialers
	p2, err := ld.reconnect(ctx, dialers)
	if err != nil {
		return nil, err
	}
	r.StormSettleS = time.Since(start).Seconds()
	r.StormConnectP99Ms = ms(p2.connect.Quantile(99))
	r.addError("storm_connect_failed", p2.failed)
	o.Logger.Info("storm settled", slog.Duration("took", time.Duration(r.StormSettleS*float64(time.Second))), slog.Int("clients", p2.connected))
	return r, nil
}

// drainSlack is how many of the dropped connections the server may still hold when
// the reconnect wave starts, and drainWait how long the wave waits for the others.
const (
	drainSlack = 64
	drainWait  = time.Minute
)

// serverCount is read (OpenFiles, FileLimit) of the server process; 0 when it cannot
// be read (no process id, a cluster).
func (e *env) serverCount(read func(pid int) (int, error)) int {
	if e.pid == 0 || len(e.pids) > 0 {
		return 0
	}
	n, err := read(e.pid)
	if err != nil {
		e.o.Logger.Warn("cannot read the server's open files or their limit", slog.Any("error", err))
		return 0
	}
	return n
}

// openFiles counts the server's open files; 0 when it cannot.
func (e *env) openFiles() int { return e.serverCount(OpenFiles) }

// fileLimit is the server's limit on open files; 0 when unknown or unlimited.
func (e *env) fileLimit() int { return e.serverCount(FileLimit) }

// awaitFiles waits (at most drainWait) until the server holds at most n open files.
// The storm's clients drop before they reconnect, but the server closes their sockets
// only as it reads each client's close: the wave must not find the old sockets still
// open, or 19,000 old and new ones pass the server's 20,000 open files (the settle time
// counts from the drop, so it includes this wait).
// It returns the server's open files at the end.
func (e *env) awaitFiles(ctx context.Context, n int) int {
	ctx, cancel := context.WithTimeout(ctx, drainWait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		k := e.openFiles()
		if k <= n {
			return k
		}
		select {
		case <-ctx.Done():
			e.o.Logger.Warn("the server still holds dropped connections; reconnecting anyway", slog.Int("openFiles", k), slog.Int("limit", n))
			return k
		case <-tick.C:
		}
	}
}

// connectLoad is the load generator of the connect scenario: this process, or
// worker processes. Each phase returns once every client has connected or failed.
type connectLoad interface {
	connect(ctx context.Context) (*connectPhase, error)
	drop(ctx context.Context) error // close every client
	reconnect(ctx context.Context, dialers int) (*connectPhase, error)
	sample() ProcSample // CPU of every load-generator process, summed
	processes() int
	close()
}

// connectPhase is what connecting every client gave.
type connectPhase struct {
	connected int
	failed    int64
	connect   *Histogram // time to connect, of those that did
	lastErr   string     // of the last failure
}

// fill sets the connect figures of r from p and the time it took.
func (p *connectPhase) fill(r *Result, elapsed time.Duration) {
	r.addError("connect_failed", p.failed)
	if elapsed > 0 {
		r.ConnectPerS = float64(p.connected) / elapsed.Seconds()
	}
	r.ConnectP50Ms, r.ConnectP99Ms = ms(p.connect.Quantile(50)), ms(p.connect.Quantile(99))
}

// localLoad connects every client from this process.
type localLoad struct {
	e *env
	f *fleet
}

// newLocalLoad connects from this process: with raw clients (rawConnector) when the
// protocol and transport allow (JSON on WebSockets over http://), through client.Dial
// otherwise.
func newLocalLoad(e *env) (*localLoad, error) {
	if e.rawOK() {
		endpoints := e.endpoints
		if len(endpoints) == 0 {
			endpoints = []string{e.endpoint}
		}
		urls := make([]string, len(endpoints))
		for i, ep := range endpoints {
			urls[i] = auth.ClientURL(ep, e.o.Hub)
		}
		rc, err := newRawConnector(urls)
		if err != nil {
			return nil, err
		}
		e.rawc = rc
	}
	return &localLoad{e: e}, nil
}

func (l *localLoad) connect(ctx context.Context) (*connectPhase, error) {
	return l.dial(ctx, l.e)
}

func (l *localLoad) reconnect(ctx context.Context, dialers int) (*connectPhase, error) {
	storm := *l.e.o
	storm.ConnectConcurrency = dialers
	se := *l.e
	se.o = &storm
	return l.dial(ctx, &se)
}

func (l *localLoad) dial(ctx context.Context, e *env) (*connectPhase, error) {
	var f *fleet
	var err error
	if e.rawc != nil {
		f, err = connectRaw(ctx, e, e.o.Clients, func(i int, c *rawClient) { c.readLoop(nil, i) }, e.rawc.connect)
	} else {
		f, err = connectAll(ctx, e, e.o.Clients, nil)
	}
	if err != nil {
		return nil, err
	}
	l.f = f
	return f.phase(), nil
}

func (l *localLoad) drop(context.Context) error {
	l.closeFleet()
	return nil
}

func (l *localLoad) closeFleet() {
	if l.f != nil {
		l.f.close()
		l.f = nil
	}
}

// close closes the clients and the dialers' negotiate connections.
func (l *localLoad) close() {
	l.closeFleet()
	if l.e.rawc != nil {
		l.e.rawc.close()
	}
}

func (l *localLoad) sample() ProcSample { return selfSample() }
func (l *localLoad) processes() int     { return 1 }
