// Package metrics holds the Prometheus metrics of a Signalbox service. There are no
// package-level collectors: New registers a Metrics on the registry it is given, so
// that every server (and every test) has its own. A nil *Metrics is valid and
// records nothing, so packages can take one without caring whether metrics are on.
//
// Every metric name starts with signalbox_. Other packages record through the
// methods here (the cluster code calls BackplanePublishError, for example); the
// names and labels are documented in docs/metrics.md.
package metrics

import (
	"errors"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signalbox-io/signalbox/auth"
)

// Metrics is the set of Signalbox metrics registered on one registry.
type Metrics struct {
	gatherer prometheus.Gatherer

	mu    sync.Mutex
	conns map[[3]string]*Conn // by hub, transport, protocol

	connections     *prometheus.GaugeVec
	connectsTotal   *prometheus.CounterVec
	messagesIn      *prometheus.CounterVec
	messagesOut     *prometheus.CounterVec
	bytesIn         *prometheus.CounterVec
	bytesOut        *prometheus.CounterVec
	restRequests    *prometheus.CounterVec
	upstreamCalls   *prometheus.CounterVec
	upstreamLatency *prometheus.HistogramVec
	authFailures    *prometheus.CounterVec
	slowConsumers   prometheus.Counter
	publishErrors   prometheus.Counter
	outages         prometheus.Counter
	forwarded       prometheus.Counter

	// restCounters are restRequests' counters by operation and status, copied on
	// write (under mu): a REST request finds its counter without formatting and
	// hashing labels or taking a lock.
	restCounters atomic.Pointer[map[restKey]prometheus.Counter]
	// upstreamByStatus: the same for upstreamCalls and upstreamLatency by status.
	upstreamByStatus atomic.Pointer[map[string]upstreamChildren]
}

// New creates the metrics and registers them, with the Go runtime and process
// collectors (as signalbox_go_* and signalbox_process_*), on reg.
func New(reg *prometheus.Registry) *Metrics {
	f := func(c prometheus.Collector) prometheus.Collector { reg.MustRegister(c); return c }
	m := &Metrics{gatherer: reg, conns: make(map[[3]string]*Conn)}
	m.connections = f(prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "signalbox_connections",
		Help: "Client connections that completed the handshake, by hub, transport and protocol.",
	}, []string{"hub", "transport", "protocol"})).(*prometheus.GaugeVec)
	m.connectsTotal = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signalbox_connections_opened_total",
		Help: "Client connections that completed the handshake since start, by hub, transport and protocol.",
	}, []string{"hub", "transport", "protocol"})).(*prometheus.CounterVec)
	m.messagesIn = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signalbox_messages_received_total",
		Help: "Hub protocol messages received from clients (pings and completions included), by transport.",
	}, []string{"transport"})).(*prometheus.CounterVec)
	m.messagesOut = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signalbox_messages_sent_total",
		Help: "Frames queued to clients (handshake answers and pings included), by transport.",
	}, []string{"transport"})).(*prometheus.CounterVec)
	m.bytesIn = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signalbox_received_bytes_total",
		Help: "Bytes of hub protocol received from clients, by transport.",
	}, []string{"transport"})).(*prometheus.CounterVec)
	m.bytesOut = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signalbox_sent_bytes_total",
		Help: "Bytes of hub protocol queued to clients, by transport.",
	}, []string{"transport"})).(*prometheus.CounterVec)
	m.restRequests = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signalbox_rest_requests_total",
		Help: "REST API requests, by operation (sendToAll, addUserToGroup, ...; unknown for no route) and HTTP status.",
	}, []string{"operation", "status"})).(*prometheus.CounterVec)
	m.upstreamCalls = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signalbox_upstream_calls_total",
		Help: "HTTP calls to the upstream (function app), by HTTP status or failure (timeout, network, ...).",
	}, []string{"status"})).(*prometheus.CounterVec)
	m.upstreamLatency = f(prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "signalbox_upstream_call_duration_seconds",
		Help:    "Duration of HTTP calls to the upstream, by HTTP status or failure.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 100},
	}, []string{"status"})).(*prometheus.HistogramVec)
	m.authFailures = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signalbox_auth_failures_total",
		Help: "Rejected access tokens, by endpoint (negotiate, connect, rest) and reason.",
	}, []string{"endpoint", "reason"})).(*prometheus.CounterVec)
	m.slowConsumers = f(prometheus.NewCounter(prometheus.CounterOpts{
		Name: "signalbox_slow_consumer_closes_total",
		Help: "Connections closed because their outbound queue was full.",
	})).(prometheus.Counter)
	m.publishErrors = f(prometheus.NewCounter(prometheus.CounterOpts{
		Name: "signalbox_backplane_publish_errors_total",
		Help: "Messages the cluster backplane failed to publish.",
	})).(prometheus.Counter)
	m.outages = f(prometheus.NewCounter(prometheus.CounterOpts{
		Name: "signalbox_backplane_outages_total",
		Help: "Episodes of the cluster backplane (Redis) being unreachable.",
	})).(prometheus.Counter)
	m.forwarded = f(prometheus.NewCounter(prometheus.CounterOpts{
		Name: "signalbox_cluster_forwarded_requests_total",
		Help: "Client requests forwarded to the cluster node holding their connection.",
	})).(prometheus.Counter)
	prefixed := prometheus.WrapRegistererWithPrefix("signalbox_", reg)
	prefixed.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// Conn is the metrics of the connections of one hub, transport and protocol: the
// label lookups are done once, so recording a message is an atomic add, and every
// connection of the kind shares one Conn. A nil *Conn records nothing.
type Conn struct {
	open                                       prometheus.Gauge
	messagesIn, messagesOut, bytesIn, bytesOut prometheus.Counter
}

// ConnOpened counts a connection that completed its handshake and returns the
// metrics of its kind; call Closed on it exactly once when the connection ends.
func (m *Metrics) ConnOpened(hub, transport, protocol string) *Conn {
	if m == nil {
		return nil
	}
	key := [3]string{hub, transport, protocol}
	m.mu.Lock()
	c := m.conns[key]
	if c == nil {
		c = &Conn{
			open:        m.connections.WithLabelValues(hub, transport, protocol),
			messagesIn:  m.messagesIn.WithLabelValues(transport),
			messagesOut: m.messagesOut.WithLabelValues(transport),
			bytesIn:     m.bytesIn.WithLabelValues(transport),
			bytesOut:    m.bytesOut.WithLabelValues(transport),
		}
		m.conns[key] = c
	}
	m.mu.Unlock()
	m.connectsTotal.WithLabelValues(hub, transport, protocol).Inc()
	c.open.Inc()
	return c
}

// Closed takes one connection off the gauge.
func (c *Conn) Closed() {
	if c != nil {
		c.open.Dec()
	}
}

// Received counts hub messages and their bytes from a client.
func (c *Conn) Received(messages, bytes int) {
	if c != nil {
		c.messagesIn.Add(float64(messages))
		c.bytesIn.Add(float64(bytes))
	}
}

// Sent counts one frame of size bytes queued to a client.
func (c *Conn) Sent(bytes int) {
	if c != nil {
		c.messagesOut.Inc()
		c.bytesOut.Add(float64(bytes))
	}
}

// RESTRequest counts one REST API request.
func (m *Metrics) RESTRequest(operation string, status int) {
	if m == nil {
		return
	}
	k := restKey{operation, status}
	if known := m.restCounters.Load(); known != nil {
		if c, ok := (*known)[k]; ok {
			c.Inc()
			return
		}
	}
	c := m.restRequests.WithLabelValues(operation, strconv.Itoa(status))
	c.Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[restKey]prometheus.Counter{k: c}
	if known := m.restCounters.Load(); known != nil {
		maps.Copy(next, *known)
	}
	m.restCounters.Store(&next)
}

// restKey is one label pair of restRequests. Operations are the REST API's fixed names
// and statuses HTTP's, so the map stays small.
type restKey struct {
	operation string
	status    int
}

// UpstreamCall counts one HTTP call to the upstream; status is the HTTP status or
// the failure (timeout, network, ...).
func (m *Metrics) UpstreamCall(status string, elapsed time.Duration) {
	if m == nil {
		return
	}
	// As RESTRequest: the children of each status are looked up once (WithLabelValues
	// hashes the label and locks the vector on every call).
	if known := m.upstreamByStatus.Load(); known != nil {
		if c, ok := (*known)[status]; ok {
			c.calls.Inc()
			c.latency.Observe(elapsed.Seconds())
			return
		}
	}
	c := upstreamChildren{m.upstreamCalls.WithLabelValues(status), m.upstreamLatency.WithLabelValues(status)}
	c.calls.Inc()
	c.latency.Observe(elapsed.Seconds())
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[string]upstreamChildren{status: c}
	if known := m.upstreamByStatus.Load(); known != nil {
		maps.Copy(next, *known)
	}
	m.upstreamByStatus.Store(&next)
}

// upstreamChildren are the series of one status of upstream calls. Statuses are HTTP's
// and a few failure names, so the map stays small.
type upstreamChildren struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// AuthFailure counts a rejected token.
func (m *Metrics) AuthFailure(endpoint, reason string) {
	if m != nil {
		m.authFailures.WithLabelValues(endpoint, reason).Inc()
	}
}

// SlowConsumerClosed counts a connection closed because its queue was full.
func (m *Metrics) SlowConsumerClosed() {
	if m != nil {
		m.slowConsumers.Inc()
	}
}

// BackplanePublishError counts a message the cluster backplane failed to publish.
func (m *Metrics) BackplanePublishError() {
	if m != nil {
		m.publishErrors.Inc()
	}
}

// AuthReason is the label of a token validation error: missing, too_long, expired,
// audience, signature, algorithm, malformed, forbidden (an identity not allowed) or
// invalid.
func AuthReason(err error) string {
	switch {
	case err == nil || errors.Is(err, auth.ErrNoToken):
		return "missing"
	case errors.Is(err, auth.ErrTokenTooLong):
		return "too_long"
	case errors.Is(err, auth.ErrExpired):
		return "expired"
	case errors.Is(err, auth.ErrAudience):
		return "audience"
	case errors.Is(err, auth.ErrBadSignature):
		return "signature"
	case errors.Is(err, auth.ErrAlgorithm):
		return "algorithm"
	case errors.Is(err, auth.ErrMalformed):
		return "malformed"
	case errors.Is(err, auth.ErrForbidden):
		return "forbidden"
	}
	return "invalid"
}

// BackplaneOutage counts one episode of the cluster backplane being unreachable.
func (m *Metrics) BackplaneOutage() {
	if m != nil {
		m.outages.Inc()
	}
}

// ClusterForward counts a client request forwarded to the node holding its connection.
func (m *Metrics) ClusterForward() {
	if m != nil {
		m.forwarded.Inc()
	}
}
