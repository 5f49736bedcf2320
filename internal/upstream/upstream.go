// Package upstream forwards client connection events and hub invocations, signed, to the
// function app (the "upstream" of Azure SignalR serverless mode) and relays invocation
// results back to the client.
//
// Each connection gets a Session. Its work (connected, invocations, disconnected) runs in
// order on at most Options.Parallelism short-lived worker goroutines owned by that session,
// so a stalled upstream call only ever holds up its own connection, and an idle connection
// costs no goroutine at all. The queue of each session is bounded; beyond it invocations
// fail at once with a Completion error.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// Defaults applied to zero Options fields.
const (
	DefaultTimeout     = 100 * time.Second
	DefaultParallelism = 1
	DefaultQueueSize   = 64
	DefaultQueueBytes  = 4 << 20
	// DefaultMaxConnsPerHost is 0: the pool of connections to one host is as large as
	// the calls in flight may be (MaxInFlight), so that it is never a queue shared by
	// every event behind the host's slowest function.
	DefaultMaxConnsPerHost = 0
	DefaultRetryAttempts   = 3
	DefaultRetryMinBackoff = 100 * time.Millisecond
	DefaultRetryMaxBackoff = 2 * time.Second
	DefaultMaxResponseSize = 16 << 20
	DefaultMaxInFlight     = 1000
	// DefaultMaxInFlightPerHub and DefaultMaxInFlightPerEvent isolate hubs and events
	// from each other: a stalled function holds at most this many of the slots.
	DefaultMaxInFlightPerHub   = 500
	DefaultMaxInFlightPerEvent = 250
	// DefaultSlotWait is how long an invocation may wait for a slot of its event.
	DefaultSlotWait = 50 * time.Millisecond
)

// Rule sends the events whose hub, category and event match its patterns to URLTemplate.
// A pattern is "*" (or empty) for anything, a comma-separated list, or one name; matching
// is case-insensitive. URLTemplate may hold {hub}, {category} and {event}, which are
// replaced by the path-escaped values.
type Rule struct {
	URLTemplate, HubPattern, CategoryPattern, EventPattern string
}

// Call is the outcome of one HTTP attempt, for Options.Observe.
type Call struct {
	Hub, ConnectionID, Event string
	// Status is the HTTP status code ("200", "500", ...) or the failure (timeout,
	// network, read_error, too_large, shutdown).
	Status  string
	Elapsed time.Duration
}

// Options configures an Upstream. Zero values select the defaults above.
type Options struct {
	// Rules are tried in order; the first whose patterns all match wins. Events no rule
	// matches are dropped, and invocations with an id get a Completion error at once.
	Rules []Rule
	// AccessKeys sign every request (X-ASRS-Signature), primary first.
	AccessKeys []string
	// Timeout bounds one upstream HTTP call, including reading the response.
	Timeout time.Duration
	// Parallelism is how many invocations of one connection may be in flight at once.
	// 1 keeps strict request/response order per connection, as the Azure emulator does.
	Parallelism int
	// QueueSize is how many invocations of one connection may wait for a worker.
	QueueSize int
	// QueueBytes bounds the bodies of one connection's waiting invocations (one that
	// is larger is still queued alone), so that a client sending its largest messages
	// to a stalled function app does not pin QueueSize of them.
	QueueBytes int
	// MaxConnsPerHost bounds the HTTP connections to one upstream host (own client only);
	// 0 means MaxInFlight. A smaller pool is shared by every event of the host: calls
	// beyond it wait for a connection behind the slowest function's calls.
	MaxConnsPerHost int
	// Logger receives one Warn line per failed upstream call; nil discards.
	Logger *slog.Logger
	// HTTPClient replaces the pooled client built from the options; its own Timeout, if
	// any, applies on top of Timeout.
	HTTPClient *http.Client
	// Observe, if set, is told the outcome of every HTTP attempt.
	Observe func(Call)

	// RetryAttempts is how many times connected/disconnected are tried (network errors
	// other than timeouts, and 5xx). Messages are never retried.
	RetryAttempts int
	// RetryMinBackoff and RetryMaxBackoff bound the exponential wait between attempts.
	RetryMinBackoff, RetryMaxBackoff time.Duration
	// MaxResponseSize bounds the body of an invocation result.
	MaxResponseSize int64
	// MaxInFlight bounds the upstream calls in progress across all connections, so a
	// stalled function app cannot pile up requests and memory: beyond it invocations fail
	// at once with a Completion error, and connection events wait for a free slot.
	MaxInFlight int
	// RejectConnections makes the connected event blocking, as Azure Web PubSub's connect
	// event is: when the upstream answers it with 401 or 403 (a failing connected handler
	// of the Functions extension answers 403), the connection's ConnInfo.OnRejected runs
	// (the server closes the connection), its queued invocations are dropped and no
	// disconnected event follows. Off by default: in Azure SignalR Service connected is
	// not blocking.
	RejectConnections bool
	// MaxInFlightPerHub bounds the calls in flight for one hub, and MaxInFlightPerEvent
	// those for one event of one hub through one rule (connected and disconnected are
	// events too). An invocation beyond either fails with a Completion error
	// (ErrTextOverloaded...) naming what is saturated, at once for the hub and after
	// SlotWait for the event; connection events wait.
	MaxInFlightPerHub   int
	MaxInFlightPerEvent int
	// SlotWait is how long after its arrival an invocation whose event has
	// MaxInFlightPerEvent calls in flight may wait for one of them to finish before it
	// is refused; at most as many invocations as that limit wait for one event, and
	// those beyond are refused at once. Zero selects DefaultSlotWait; negative refuses
	// at once.
	SlotWait time.Duration
}

// ConnInfo describes one client connection. Hub is lower-cased when sent. Query is the
// client's connect query string (with or without the leading '?'); access_token is removed
// from it before it is forwarded.
type ConnInfo struct {
	ID, Hub, UserID, Query string
	Claims                 []auth.Claim
	Protocol               protocol.Protocol
	// OnRejected is called (from a worker, once) when Options.RejectConnections is set and
	// the upstream refused the connected event; reason is for the client's Close message.
	// It must not block.
	OnRejected func(reason string)
}

// Upstream delivers events to the upstream URLs. It is safe for concurrent use.
type Upstream struct {
	rules      []rule
	keys       atomic.Pointer[[]string] // sign requests; SetAccessKeys replaces them
	timeout    time.Duration
	par        int
	queueSize  int
	queueBytes int
	attempts   int
	rejectConn bool
	minBackoff time.Duration
	maxBackoff time.Duration
	maxResp    int64
	slots      chan struct{} // one token per call in flight, MaxInFlight in all
	hubLimit   *keyedLimit   // calls in flight per hub
	partLimit  *keyedLimit   // calls in flight per rule, hub and event
	slotWait   time.Duration // an invocation's wait for a slot of its event; <= 0: none
	log        *slog.Logger
	observe    func(Call)
	client     *http.Client
	ownClient  bool
	fast       *fastClient // plain http targets of the own client; nil with Options.HTTPClient

	// base is the parent of every call's context; abort cancels it (cause errShutdown),
	// which ends the calls in flight without a registry of them.
	base      context.Context
	abortBase context.CancelCauseFunc

	mu      sync.Mutex
	workers int           // worker goroutines alive, across sessions
	closing bool          // Close was called
	stopped bool          // Close returned or gave up: no new work is accepted
	aborted chan struct{} // closed when Close's ctx expires: in-flight calls are cancelled
	drained chan struct{} // closed when workers reaches 0 after Close

	handoff   chan *Session // to a parked worker goroutine (see workers.go)
	parked    atomic.Int64  // worker goroutines parked
	closed    chan struct{} // closed when Close returns: parked workers exit
	closeOnce sync.Once

	stats          counters
	overloadLogged atomic.Bool // one log line per episode of MaxInFlight reached
}

var (
	errTimedOut = errors.New("upstream timed out")
	errShutdown = errors.New("upstream shutting down")
)

// New validates opts and returns an Upstream. A template that does not give an absolute
// http(s) URL is an error naming the template.
func New(opts Options) (*Upstream, error) {
	u := &Upstream{
		timeout:    orDefault(opts.Timeout, DefaultTimeout),
		par:        orDefault(opts.Parallelism, DefaultParallelism),
		queueSize:  orDefault(opts.QueueSize, DefaultQueueSize),
		queueBytes: orDefault(opts.QueueBytes, DefaultQueueBytes),
		attempts:   orDefault(opts.RetryAttempts, DefaultRetryAttempts),
		rejectConn: opts.RejectConnections,
		minBackoff: orDefault(opts.RetryMinBackoff, DefaultRetryMinBackoff),
		maxBackoff: orDefault(opts.RetryMaxBackoff, DefaultRetryMaxBackoff),
		maxResp:    orDefault(opts.MaxResponseSize, DefaultMaxResponseSize),
		slotWait:   opts.SlotWait,
		log:        opts.Logger,
		observe:    opts.Observe,
		client:     opts.HTTPClient,
		aborted:    make(chan struct{}),
		handoff:    make(chan *Session),
		closed:     make(chan struct{}),
	}
	u.base, u.abortBase = context.WithCancelCause(context.Background())
	u.SetAccessKeys(opts.AccessKeys)
	for i, r := range opts.Rules {
		cr, err := compileRule(i, r)
		if err != nil {
			return nil, err
		}
		u.rules = append(u.rules, cr)
	}
	u.maxBackoff = max(u.maxBackoff, u.minBackoff)
	if u.slotWait == 0 {
		u.slotWait = DefaultSlotWait
	}
	maxInFlight := orDefault(opts.MaxInFlight, DefaultMaxInFlight)
	u.slots = make(chan struct{}, maxInFlight)
	u.hubLimit = newKeyedLimit(orDefault(opts.MaxInFlightPerHub, min(DefaultMaxInFlightPerHub, maxInFlight)))
	u.partLimit = newKeyedLimit(orDefault(opts.MaxInFlightPerEvent, min(DefaultMaxInFlightPerEvent, maxInFlight)))
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.client == nil {
		maxConns := orDefault(opts.MaxConnsPerHost, maxInFlight)
		u.client = newHTTPClient(maxConns)
		u.ownClient = true
		u.fast = newFastClient(u.base, maxConns, idleConnTimeout)
	}
	return u, nil
}

// orDefault is v, or def when v is zero or negative (an unset option).
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// idleConnTimeout closes upstream connections left idle by a peak.
const idleConnTimeout = 30 * time.Second

func newHTTPClient(maxConns int) *http.Client {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{}
	}
	t.MaxConnsPerHost = maxConns
	// Every connection the in-flight calls opened may wait idle for the next call:
	// with fewer idle slots than calls in flight, each burst closed the surplus and
	// the next one dialed it again (a profile of 500 concurrent invocations spent 13 %
	// of the server's CPU in dialing). The idle timeout trims what a peak left behind.
	t.MaxIdleConnsPerHost = maxConns
	t.MaxIdleConns = 0 // no limit across hosts beyond the per-host one
	t.IdleConnTimeout = idleConnTimeout
	return &http.Client{
		Transport: t,
		// A redirect would resend the signature to wherever the upstream points; the
		// Functions host never redirects, so a 3xx is reported as a failed status.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Close stops accepting new sessions' work once the queued and in-flight work is done.
// It waits for that work until ctx ends; then it cancels the in-flight calls, fails the
// queued invocations with a Completion error, and returns ctx's error once every worker
// has exited. Events and invocations that arrive after Close returned are dropped (with a
// Completion error for invocations with an id).
func (u *Upstream) Close(ctx context.Context) error {
	u.mu.Lock()
	u.closing = true
	if u.workers == 0 {
		u.stopped = true
		u.mu.Unlock()
		u.closeIdle()
		return nil
	}
	if u.drained == nil {
		u.drained = make(chan struct{})
	}
	drained := u.drained
	u.mu.Unlock()

	select {
	case <-drained:
		u.closeIdle()
		return nil
	case <-ctx.Done():
	}
	u.abort()
	<-drained // cancelled calls and failed queues end the workers promptly
	u.closeIdle()
	return fmt.Errorf("upstream: close: %w", ctx.Err())
}

func (u *Upstream) closeIdle() {
	u.abortBase(errShutdown) // nothing is in flight any more; lets the base context go
	if u.fast != nil {
		u.fast.close()
	}
	u.closeOnce.Do(func() { close(u.closed) })
	if u.ownClient {
		u.client.CloseIdleConnections()
	}
}

func (u *Upstream) abort() {
	u.mu.Lock()
	select {
	case <-u.aborted:
	default:
		close(u.aborted)
	}
	u.mu.Unlock()
	u.abortBase(errShutdown)
	if u.fast != nil {
		u.fast.abort()
	}
}

func (u *Upstream) isAborted() bool {
	select {
	case <-u.aborted:
		return true
	default:
		return false
	}
}

// addWorker reserves a worker slot; false once the Upstream no longer accepts work.
func (u *Upstream) addWorker() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.stopped {
		return false
	}
	u.workers++
	return true
}

func (u *Upstream) doneWorker() {
	u.mu.Lock()
	u.workers--
	if u.closing && u.workers == 0 {
		u.stopped = true
		if u.drained != nil {
			close(u.drained)
			u.drained = nil
		}
	}
	u.mu.Unlock()
}

// callContext returns the context of one upstream call: it ends at the timeout (cause
// errTimedOut) or when Close gives up (cause errShutdown, from u.base). One context per
// call, derived from the shared base, instead of a cancel function registered per call
// under u.mu.
func (u *Upstream) callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(u.base, u.timeout, errTimedOut)
}

// sleep waits d unless Close gives up first; false means stop retrying.
func (u *Upstream) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-u.aborted:
		return false
	}
}

// Stats is a snapshot of the counters, for metrics.
type Stats struct {
	Requests       int64 // upstream HTTP calls made, retries included
	Failures       int64 // calls that failed, all kinds
	FailedStatus   int64 // answered with a status other than 200/204
	FailedNetwork  int64 // connection refused, reset, DNS...
	FailedTimeout  int64 // no answer within Options.Timeout
	FailedInvalid  int64 // 200 whose body is not one Completion in the client's protocol
	FailedTooLarge int64 // result bigger than MaxResponseSize
	Retries        int64 // extra attempts of connected/disconnected
	QueueFull      int64 // invocations rejected because the connection's queue was full
	Overloaded     int64 // invocations rejected because MaxInFlight calls were in progress
	SlotWaits      int64 // invocations that waited for a slot of their event, and got one
	NoRule         int64 // events and invocations no rule matched
	Shutdown       int64 // work dropped because the Upstream was closing
	InFlight       int64 // calls in progress now
	BusySessions   int64 // sessions with queued or running work now
}

type counters struct {
	requests, failures, failedStatus, failedNetwork, failedTimeout, failedInvalid,
	failedTooLarge, retries, queueFull, overloaded, slotWaits, noRule, shutdown, inFlight, busySessions atomic.Int64
}

// Stats returns the current counters.
func (u *Upstream) Stats() Stats {
	c := &u.stats
	return Stats{
		Requests:       c.requests.Load(),
		Failures:       c.failures.Load(),
		FailedStatus:   c.failedStatus.Load(),
		FailedNetwork:  c.failedNetwork.Load(),
		FailedTimeout:  c.failedTimeout.Load(),
		FailedInvalid:  c.failedInvalid.Load(),
		FailedTooLarge: c.failedTooLarge.Load(),
		Retries:        c.retries.Load(),
		QueueFull:      c.queueFull.Load(),
		Overloaded:     c.overloaded.Load(),
		SlotWaits:      c.slotWaits.Load(),
		NoRule:         c.noRule.Load(),
		Shutdown:       c.shutdown.Load(),
		InFlight:       c.inFlight.Load(),
		BusySessions:   c.busySessions.Load(),
	}
}

// drain discards what is left of a response body (bounded) so the connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// SetAccessKeys replaces the keys that sign requests (X-ASRS-Signature), for key
// rotation without a restart: every request from then on carries one signature per
// key, sessions already open included.
func (u *Upstream) SetAccessKeys(keys []string) {
	k := append([]string(nil), keys...)
	u.keys.Store(&k)
}

func (u *Upstream) accessKeys() []string { return *u.keys.Load() }
