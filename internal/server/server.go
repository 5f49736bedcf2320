// Package server is the Signalbox service core: configuration, HTTP wiring
// (/client/negotiate, /client/, /api/...), the lifecycle of every client connection
// (handshake, keep-alive, timeouts, one writer per connection) and graceful drain.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signalbox-io/signalbox/internal/cluster"
	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/metrics"
	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/internal/upstream"
	"github.com/signalbox-io/signalbox/protocol"
)

// Server serves the client endpoints and the REST API. Create it with New, run it
// with Serve, stop it with Shutdown.
type Server struct {
	cfg      Config // as started; the reloadable settings are read from live
	log      *slog.Logger
	registry *hub.Registry // this node's connections
	node     *cluster.Node // what the REST API talks to: this node as a member of the service
	// proxyTransport carries forwarded client requests to other nodes (cluster only).
	proxyTransport http.RoundTripper
	calls          *clientCalls        // :invoke, streams and :execute on this node's connections
	upstream       *upstream.Upstream  // nil when no upstream is configured
	loop           transport.EventLoop // reads every WebSocket connection
	budget         *transport.Budget   // partial input and outbound queues of all connections
	handler        http.Handler
	adm            *admission
	flushers       flushers   // gathered fan-out writes (io_uring)
	pings          sync.Map   // protocol name -> its Ping frame (see pingFrame)
	sweep          timerSweep // every connection's lifecycle timer

	// live holds what Reload may change: the access keys (in the token gate), the
	// origin policy and the limits. Readers load it once per request.
	live atomic.Pointer[liveSettings]

	endpoint atomic.Pointer[string] // public base URL, known once listening

	mu       sync.Mutex
	conns    map[string]*conn // by connection token (the secret id= value)
	draining bool
	httpSrv  *http.Server
	started  bool           // Serve was called
	wg       sync.WaitGroup // one per started transport: its loop and cleanup

	lpCloseGrace time.Duration // tests shorten it
	// afterHandshakeQueued, when set by a test, runs once a handshake response is queued.
	afterHandshakeQueued func()
	// beforeHandle, when set by a test, sees every hub message a client sends.
	beforeHandle func(protocol.Message)
	panics       atomic.Int64 // connections closed by a recovered panic
	// whileDraining, when set by a test, runs in Shutdown once draining has begun.
	whileDraining func()

	metrics   *metrics.Metrics
	readiness readiness
	tlsConfig *tls.Config // nil: plain HTTP
	mount     map[string]http.Handler
	authLog   rateLimitedLog

	ready          atomic.Bool
	slowConsumers  atomic.Int64
	budgetRefusals atomic.Int64
	connsTotal     atomic.Int64
}

// Stats are counters for tests and diagnostics.
type Stats struct {
	Connections      int   // connections currently known (negotiated or connected)
	ConnectionsTotal int64 // connections ever created
	SlowConsumers    int64 // connections closed because they did not read: queue full or write timed out
	BudgetRefusals   int64 // connections closed because the memory budget was spent
	Panics           int64 // connections closed because handling them panicked (recovered)
}

// Options are the parts of a server that are not configuration.
type Options struct {
	// Logger nil discards logs.
	Logger *slog.Logger
	// Metrics records the server's metrics; nil creates them on a registry of the
	// server's own (see Server.Metrics).
	Metrics *metrics.Metrics
	// Mount adds handlers by http.ServeMux pattern, under /_/ (the demo's pages and
	// function app).
	Mount map[string]http.Handler
}

// New checks cfg and builds a server. logger nil discards logs.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	return NewWithOptions(cfg, &Options{Logger: logger})
}

// NewWithOptions is New with the metrics (and logger) given by the caller.
func NewWithOptions(cfg Config, opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	logger := opts.Logger
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server: invalid config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:    cfg,
		log:    logger,
		conns:  make(map[string]*conn),
		budget: transport.NewBudget(cfg.memoryBudget()),
		adm:    newAdmission(),

		lpCloseGrace: defaultLPCloseGrace,
		metrics:      opts.Metrics,
		mount:        opts.Mount,
	}
	s.sweep.s = s
	s.flushers.log = logger
	if s.metrics == nil {
		s.metrics = metrics.New(prometheus.NewRegistry())
	}
	s.authLog.log = logger
	if len(cfg.AccessKeys) == 0 {
		return nil, errors.New("server: at least one access key is required")
	}
	live, err := newLiveSettings(cfg, nil)
	if err != nil {
		return nil, err
	}
	if live.gate, err = newGate(cfg, live.gate.Local, logger); err != nil {
		return nil, err
	}
	s.setLive(live)
	node, err := s.newNode(cfg, logger)
	if err != nil {
		return nil, err
	}
	node.SetMaxGroups(cfg.MaxGroupsPerConnection) // setLive does it on a reload
	s.node, s.registry = node, node.Registry()
	s.calls = newClientCalls(s)
	if rules := cfg.Rules(); len(rules) > 0 {
		up, err := upstream.New(upstream.Options{
			Rules:               rules,
			AccessKeys:          cfg.AccessKeys,
			Timeout:             cfg.UpstreamTimeout,
			Logger:              logger,
			MaxInFlight:         cfg.UpstreamMaxInFlight,
			MaxInFlightPerHub:   cfg.UpstreamMaxInFlightPerHub,
			MaxInFlightPerEvent: cfg.UpstreamMaxInFlightPerEvent,
			MaxConnsPerHost:     cfg.UpstreamMaxConnsPerHost,
			SlotWait:            upstreamSlotWait(cfg.UpstreamSlotWait),
			Observe:             s.traceUpstream,
			// Opt-in blocking connected: the upstream closes refused connections.
			RejectConnections: cfg.UpstreamRejectConnections,
		})
		if err != nil {
			return nil, fmt.Errorf("server: upstream: %w", err)
		}
		s.upstream = up
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("server: tls-cert, tls-key: %w", err)
		}
		// HTTP/1.1 only: WebSocket upgrades need it.
		s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	if cfg.PublicURL != "" {
		ep := strings.TrimRight(cfg.PublicURL, "/")
		s.endpoint.Store(&ep)
	}
	s.handler = s.routes()
	return s, nil
}

// upstreamSlotWait maps the setting (0 = no wait) to upstream.Options.SlotWait (0 =
// the default, negative = no wait).
func upstreamSlotWait(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Registry returns the hub registry the server's connections live in.
func (s *Server) Registry() *hub.Registry { return s.registry }

// Node returns the cluster node the REST API talks to.
func (s *Server) Node() *cluster.Node { return s.node }

// Metrics returns the metrics the server records; other parts of the service (the
// cluster's backplane) record theirs there too. Its Handler serves /metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

// Endpoint returns the public base URL (no trailing slash): the configured public URL,
// or http://<listen address> once Serve has started.
func (s *Server) Endpoint() string {
	if p := s.endpoint.Load(); p != nil {
		return *p
	}
	return "http://" + s.cfg.Listen
}

// Stats returns current counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	return Stats{Connections: n, ConnectionsTotal: s.connsTotal.Load(), SlowConsumers: s.slowConsumers.Load(), Panics: s.panics.Load(),
		BudgetRefusals: s.budgetRefusals.Load()}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	if !s.cfg.MetricsOwnListener() {
		mux.Handle("/metrics", s.metrics.Handler())
	}
	if s.tracing() {
		s.traceRoutes(mux)
	}
	for pattern, h := range s.mount {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("/client/negotiate", s.negotiate)
	mux.HandleFunc("/client/negotiate/", s.negotiate)
	mux.HandleFunc("/client/", s.connect)
	mux.HandleFunc("/client", s.connect)
	api := s.restAPI()
	return cors(s.originPolicy, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The REST API routes on the escaped path itself: a user, group or connection
		// named "." or ".." is a name there, which the mux would clean and redirect.
		// It also routes every alias of /api/health (any case, /api/v1, a trailing
		// slash) to s.health.
		if isAPIPath(r.URL.Path) {
			if s.forwardClientCall(w, r) || s.fanOutExecute(w, r, api) {
				return
			}
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
}

// isAPIPath reports whether path is under /api/, in any letter case.
func isAPIPath(path string) bool {
	return len(path) >= len("/api/") && strings.EqualFold(path[:len("/api/")], "/api/")
}

// Serve accepts connections on ln until Shutdown. It returns http.ErrServerClosed
// after a Shutdown, like net/http.
func (s *Server) Serve(ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// net/http answers 431 beyond it (it allows 4 KiB of slack on top).
		MaxHeaderBytes: s.cfg.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.draining || s.started {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.httpSrv = srv
	s.started = true
	s.mu.Unlock()
	if s.endpoint.Load() == nil {
		ep := s.cfg.Scheme() + "://" + listenEndpoint(s.cfg.Listen, ln.Addr())
		s.endpoint.Store(&ep)
	}
	if s.tlsConfig != nil {
		ln = tls.NewListener(ln, s.tlsConfig)
	}
	s.node.SetAddress(s.nodeAddress(ln.Addr()))
	s.ready.Store(true)
	err := srv.Serve(ln)
	s.ready.Store(false)
	return err
}

// EndpointFor is the connection-string endpoint of a server configured with cfg that
// listens on addr: the public URL, or http(s):// and the listen address as typed (port
// 0 replaced by the port bound, a wildcard host by localhost).
func EndpointFor(cfg Config, addr net.Addr) string {
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/")
	}
	return cfg.Scheme() + "://" + listenEndpoint(cfg.Listen, addr)
}

// listenEndpoint is the listen address as the user typed it, except that a host that
// is empty or a wildcard (0.0.0.0, ::) becomes localhost, which a client can dial, and
// port 0 becomes the port actually bound.
func listenEndpoint(listen string, addr net.Addr) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return addr.String()
	}
	if port == "0" {
		if _, p, err := net.SplitHostPort(addr.String()); err == nil {
			port = p
		}
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// httpGrace is how long Shutdown waits for in-flight REST calls once every client
// connection has been drained.
const httpGrace = time.Second

// socketGrace bounds how long Shutdown waits for the WebSockets still closing once
// their connections ended: a closing handshake gives up after 5 s.
const socketGrace = 6 * time.Second

// Shutdown drains: it stops accepting requests, sends a Close message (reconnect
// allowed) to every client, waits until their transports ended or ctx is done, then
// stops the upstream. Connections still open when ctx ends are dropped.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	srv := s.httpSrv
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ready.Store(false)
	if s.whileDraining != nil {
		s.whileDraining()
	}

	httpDone := make(chan error, 1)
	httpCtx, cancelHTTP := context.WithCancel(ctx)
	defer cancelHTTP()
	if srv != nil {
		// Closes the listeners at once; returns when the SSE and long-polling requests
		// (ended below) and in-flight REST calls have finished.
		go func() { httpDone <- srv.Shutdown(httpCtx) }()
	} else {
		httpDone <- nil
	}
	for _, c := range conns {
		c.Close("Server is shutting down.", true)
	}
	connsDone := make(chan struct{})
	go func() { s.wg.Wait(); close(connsDone) }()

	var errs []error
	select {
	case <-connsDone:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("server: drain: %w", ctx.Err()))
		s.mu.Lock()
		for _, c := range s.conns {
			c.terminate("server shutdown")
		}
		s.mu.Unlock()
		<-connsDone
	}
	s.log.Debug("drain: connections closed")
	// Client connections are gone; what is left are short REST calls and idle or
	// just-opened keep-alive sockets, which net/http waits up to 5 s for. Give the
	// REST calls a moment, then cut the rest.
	grace := time.NewTimer(httpGrace)
	select {
	case err := <-httpDone:
		if err != nil {
			errs = append(errs, fmt.Errorf("server: http shutdown: %w", err))
		}
	case <-grace.C:
		cancelHTTP()
		<-httpDone
	}
	grace.Stop()
	if srv != nil {
		_ = srv.Close()
	}
	s.log.Debug("drain: http server stopped")
	// REST broadcasts are answered once queued; their writes may still run (see
	// hub.Background). The connections are closed or terminated by now, so what is
	// left ends quickly; waiting leaves no fan-out goroutine behind.
	flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), socketGrace)
	if err := s.registry.WaitFlushes(flushCtx); err != nil {
		errs = append(errs, fmt.Errorf("server: background fan-outs: %w", err))
	}
	cancelFlush()
	s.flushers.close()
	// Every WebSocket is closed or in its closing handshake, which a client that does
	// not answer ends after 5 s; the event loop reading them ends with the last one.
	// Waiting for it leaves nothing of this server running once Shutdown returns.
	loopCtx, cancelLoop := context.WithTimeout(ctx, socketGrace)
	if err := s.loop.Wait(loopCtx); err != nil {
		errs = append(errs, fmt.Errorf("server: %w", err))
	}
	cancelLoop()
	if s.upstream != nil {
		if err := s.upstream.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("server: upstream: %w", err))
		}
	}
	// Leaving the cluster last: the others forget this node's connections at once.
	if err := s.node.Close(); err != nil {
		errs = append(errs, fmt.Errorf("server: leave cluster: %w", err))
	}
	return errors.Join(errs...)
}

// newID returns 16 random bytes, base64url without padding (22 characters), the
// shape of ASP.NET Core and Azure connection ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// cors lets browsers call every endpoint cross-origin with credentials, like Azure
// SignalR and its emulator: the Origin is reflected and every header is allowed.
// With allowed-origins set, a request whose Origin is not on the list gets 403
// before any handler runs. That also guards WebSocket upgrades, which CORS does not
// cover (cross-site WebSocket hijacking); a request without Origin is not from a
// browser page and passes.
func cors(policy func() originPolicy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origins := policy()
		if !strings.HasPrefix(r.URL.Path, "/client") && !isAPIPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		origin := r.Header.Get("Origin")
		if !origins.allows(origin) {
			textError(w, http.StatusForbidden, "Origin not allowed")
			return
		}
		if origin != "" {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, PUT, HEAD, OPTIONS")
			allowed := "Authorization, Content-Type, X-Requested-With, X-SignalR-User-Agent"
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				allowed += ", " + req
			}
			h.Set("Access-Control-Allow-Headers", allowed)
			h.Set("Access-Control-Max-Age", "600")
			h.Add("Vary", "Access-Control-Request-Headers")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// textError writes a text/plain error body like ASP.NET Core does.
func textError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

// pingFrame returns the Ping message framed in p. Every keep-alive of a protocol sends
// the same bytes, so they are encoded once per protocol instead of kept by each
// connection.
func (s *Server) pingFrame(p protocol.Protocol) ([]byte, error) {
	if f, ok := s.pings.Load(p.Name()); ok {
		return f.([]byte), nil
	}
	f, err := p.AppendFrame(nil, &protocol.Ping{})
	if err != nil {
		return nil, fmt.Errorf("server: encoding a ping in %s: %w", p.Name(), err)
	}
	s.pings.Store(p.Name(), f)
	return f, nil
}
