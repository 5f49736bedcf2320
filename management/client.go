// Package management is a typed client for the SignalR Service data-plane REST API
// (api-version 2022-06-01 paths, /api/hubs/{hub}/...), usable against Azure SignalR Service
// and against Signalbox. It is what the output binding of the Azure Functions SignalR
// extension does underneath, plus what the extension cannot do in its default mode: with
// several endpoints, messages and group actions go to every endpoint, and negotiation picks
// an online endpoint using background health checks.
//
// With several endpoints, an operation that fails on some of them returns a *DeliveryError
// naming the endpoints that accepted it and the ones that failed (Delivered(err) tells
// whether it took effect, so that a caller does not repeat it); endpoints known to be
// offline are skipped and named as failed. Once Start ran, each endpoint is checked every
// 5 s and a call that fails on it with a transport error or a 5xx marks it offline at once:
// negotiation leaves an endpoint that stopped answering within 9.5 s with the defaults
// (see HealthOptions).
//
// Endpoints come from package connection. Endpoints with an AccessKey are called with
// locally signed bearer tokens (audience = request URL with the port dropped, including
// "?api-version=..."); endpoints with a Credential with Microsoft Entra tokens for Scope,
// and their client tokens are signed with a key fetched from GET /api/v1/auth/accessKey.
package management

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/signalbox-io/signalbox/connection"
)

// APIVersion is the REST api-version the client speaks.
const APIVersion = "2022-06-01"

// generateTokenAPIVersion is the first api-version that has :generateToken.
const generateTokenAPIVersion = "2022-11-01"

// Scope is the Microsoft Entra scope of bearer tokens for identity-based endpoints.
const Scope = "https://signalr.azure.com/.default"

var (
	// ErrNotConnected is returned by PickEndpoint when no endpoint is online.
	ErrNotConnected = errors.New("Azure SignalR Service is not connected yet, please try again later.")
	// ErrNoOnlineEndpoint matches (errors.Is) the error of an operation whose every target
	// endpoint is offline.
	ErrNoOnlineEndpoint = errors.New("management: every target endpoint is offline")
	// ErrEndpointOffline is the EndpointFailure.Err of a target endpoint that was skipped
	// because it is known to be offline.
	ErrEndpointOffline = errors.New("endpoint is offline, skipped")
	// ErrNoEndpoint is returned by an operation whose Endpoints option matches no configured
	// endpoint (an empty non-nil list included): nothing was sent.
	ErrNoEndpoint = errors.New("the operation's Endpoints match no configured endpoint; nothing was sent")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("management: client closed")
)

// RetryMode selects how the delay between retries grows.
type RetryMode int

const (
	RetryFixed       RetryMode = iota // every retry waits Delay
	RetryExponential                  // Delay, 2×Delay, 4×Delay, ... capped at MaxDelay
)

// RetryOptions configures retries of failed REST calls. The zero value (MaxRetries 0)
// disables retries, as the extension does by default. Message sends are retried only for
// status codes above 500 (a send may have been delivered); other calls also for 500, 408
// and transport errors or timeouts.
type RetryOptions struct {
	MaxRetries int
	Delay      time.Duration // default 800 ms
	MaxDelay   time.Duration // default 1 min
	Mode       RetryMode
}

// HealthOptions configures the background health checks (HEAD /api/health) that run,
// once Start is called, when the client has more than one endpoint. Each endpoint is checked
// on its own every Interval.
//
// Worst case: an endpoint that stops answering is marked offline (negotiations move to
// another endpoint, sends skip it) at most Interval + (Retries+1)×Timeout +
// Retries×RetryDelay after it stopped: 9.5 s with the defaults (5 s + 2×2 s + 0.5 s), less
// when the connection is refused rather than left unanswered (then each attempt fails at
// once: about 5.5 s). Sooner still when a REST call fails on it with a transport error or a
// 5xx status: that marks it offline at once (passive health) and starts a check, which
// confirms it or brings it back. An endpoint that answers again is marked online at most
// Interval + Timeout after that.
//
// The Azure SDK checks every 2 minutes (Interval 2 min, Timeout 2 s, Retries 2, RetryDelay
// 3 s, 2 min 12 s in the worst case); set those values to behave as it does. The app settings
// AzureSignalRHealthCheck:Interval, :Timeout, :MaxRetries and :RetryDelay set them too (see
// OptionsFromSettings).
type HealthOptions struct {
	Interval   time.Duration // default 5 s
	Timeout    time.Duration // per request, default 2 s
	Retries    int           // extra attempts before an endpoint is marked offline, default 1; <0 = none
	RetryDelay time.Duration // default 500 ms
}

// Health check defaults (see HealthOptions).
const (
	DefaultHealthInterval   = 5 * time.Second
	DefaultHealthTimeout    = 2 * time.Second
	DefaultHealthRetries    = 1
	DefaultHealthRetryDelay = 500 * time.Millisecond
)

// ClientOptions configures NewClient; nil means defaults.
type ClientOptions struct {
	// HTTPClient sends the requests; default a client with Timeout.
	HTTPClient *http.Client
	// Timeout bounds each HTTP request (each attempt), also with a caller's HTTPClient;
	// default 100 s.
	Timeout time.Duration
	Retry   RetryOptions
	Health  HealthOptions
	// Logger receives diagnostics; nil discards them. Tokens and keys are never logged.
	Logger *slog.Logger
	// KeyRefreshInterval is how often signing keys of identity-based endpoints are
	// fetched again; default 55 min.
	KeyRefreshInterval time.Duration
	// Now is the clock for tokens and key ages; default time.Now.
	Now func() time.Time
}

// EndpointStatus is one configured endpoint and whether it is online.
type EndpointStatus struct {
	connection.Endpoint
	Online bool
}

// MarshalJSON writes the signalREndpoints shape {"endpointType","name","endpoint","online"}
// (without it, the embedded Endpoint's MarshalJSON would drop Online).
func (s EndpointStatus) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		EndpointType connection.EndpointType `json:"endpointType"`
		Name         string                  `json:"name"`
		Endpoint     string                  `json:"endpoint"`
		Online       bool                    `json:"online"`
	}{s.Type, s.Name, s.Endpoint.Endpoint, s.Online})
}

// LogValue logs the endpoint without secrets, with its state.
func (s EndpointStatus) LogValue() slog.Value {
	return slog.GroupValue(slog.String("endpoint", s.Endpoint.String()), slog.Bool("online", s.Online))
}

// Client calls the REST API of one or more endpoints. It is safe for concurrent use.
type Client struct {
	eps        []*endpointState
	hc         *http.Client
	timeout    time.Duration // per REST attempt
	log        *slog.Logger
	retry      RetryOptions
	health     HealthOptions
	keyRefresh time.Duration
	now        func() time.Time
	nameID     string // nameid claim of REST tokens, fixed per client as the SDK does per process

	// watching is set while the health loops run: only then may a failed call mark an
	// endpoint offline, since only they bring it back.
	watching atomic.Bool

	mu      sync.Mutex // guards the lifecycle fields below
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

type endpointState struct {
	ep     connection.Endpoint
	online atomic.Bool
	// obs orders what is learnt about the endpoint: a health check takes a number when
	// it starts, a failed call when it is seen, and a result is applied only if nothing
	// newer was, so a slow check cannot undo a later one (see settle).
	obsMu   sync.Mutex
	obsNext uint64 // the last number handed out
	obsSeen uint64 // the number of the observation online reflects
	// recheck asks the endpoint's health loop for a check now (passive health: a failed
	// call marked the endpoint offline and the check confirms or undoes that).
	recheck chan struct{}

	tokSem chan struct{} // guards tok, the cached Entra bearer; a channel so waiting honours ctx
	tok    azcore.AccessToken

	keySem      chan struct{} // one key fetch at a time; a channel so waiting honours ctx
	keyID       string
	key         string
	keyFetched  time.Time
	keyFailedAt time.Time
}

// NewClient returns a client for endpoints (as returned by connection.Settings.Resolve).
// Every endpoint needs an AccessKey or a Credential.
func NewClient(endpoints []connection.Endpoint, opts *ClientOptions) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, connection.ErrNotConfigured
	}
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = 100 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.KeyRefreshInterval <= 0 {
		o.KeyRefreshInterval = 55 * time.Minute
	}
	if o.Retry.MaxRetries < 0 {
		return nil, fmt.Errorf("management: RetryOptions.MaxRetries %d is negative", o.Retry.MaxRetries)
	}
	if o.Retry.Delay <= 0 {
		o.Retry.Delay = 800 * time.Millisecond
	}
	if o.Retry.MaxDelay <= 0 {
		o.Retry.MaxDelay = time.Minute
	}
	if o.Health.Interval <= 0 {
		o.Health.Interval = DefaultHealthInterval
	}
	if o.Health.Timeout <= 0 {
		o.Health.Timeout = DefaultHealthTimeout
	}
	if o.Health.Retries == 0 {
		o.Health.Retries = DefaultHealthRetries
	} else if o.Health.Retries < 0 {
		o.Health.Retries = 0
	}
	if o.Health.RetryDelay <= 0 {
		o.Health.RetryDelay = DefaultHealthRetryDelay
	}
	c := &Client{
		hc: o.HTTPClient, timeout: o.Timeout, log: o.Logger, retry: o.Retry, health: o.Health,
		keyRefresh: o.KeyRefreshInterval, now: o.Now, nameID: newNameID(),
	}
	for i, ep := range endpoints {
		ep, err := normaliseEndpoint(ep)
		if err != nil {
			return nil, fmt.Errorf("management: endpoint %d %s: %w", i, ep, err)
		}
		es := &endpointState{ep: ep, keySem: make(chan struct{}, 1), tokSem: make(chan struct{}, 1), recheck: make(chan struct{}, 1)}
		es.online.Store(true) // as the SDK: online until a health check says otherwise
		c.eps = append(c.eps, es)
	}
	return c, nil
}

// normaliseEndpoint fills the derived URLs of a hand-built Endpoint.
func normaliseEndpoint(ep connection.Endpoint) (connection.Endpoint, error) {
	if ep.AccessKey == "" && ep.Credential == nil {
		return ep, errors.New("neither AccessKey nor Credential is set")
	}
	ep.Endpoint = strings.TrimRight(ep.Endpoint, "/")
	if ep.Endpoint == "" {
		return ep, errors.New("Endpoint is empty")
	}
	if ep.ServiceURL == "" {
		ep.ServiceURL = ep.Endpoint + "/"
	}
	for _, p := range []*string{&ep.ClientEndpoint, &ep.ServerEndpoint} {
		if *p == "" {
			*p = ep.ServiceURL
		} else if !strings.HasSuffix(*p, "/") {
			*p += "/"
		}
	}
	if ep.AudienceBase == "" {
		ep.AudienceBase = ep.Endpoint
	}
	for _, u := range []string{ep.ServiceURL, ep.ClientEndpoint, ep.ServerEndpoint} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return ep, fmt.Errorf("%q is not an absolute http or https URL", u)
		}
	}
	return ep, nil
}

func newNameID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "signalbox"
	}
	var b [16]byte
	_, _ = crand.Read(b[:])
	return host + "_" + hex.EncodeToString(b[:])
}

// Endpoints returns the configured endpoints with their online state.
func (c *Client) Endpoints() []EndpointStatus {
	out := make([]EndpointStatus, len(c.eps))
	for i, e := range c.eps {
		out[i] = EndpointStatus{Endpoint: e.ep, Online: e.online.Load()}
	}
	return out
}

// PickEndpoint selects the endpoint for a negotiation: the only endpoint if there is one
// (whatever its state), else a random online primary, else a random online secondary,
// else ErrNotConnected.
func (c *Client) PickEndpoint(hub string) (connection.Endpoint, error) {
	es, err := c.pick()
	if err != nil {
		return connection.Endpoint{}, err
	}
	return es.ep, nil
}

func (c *Client) pick() (*endpointState, error) {
	if len(c.eps) == 1 {
		return c.eps[0], nil
	}
	for _, typ := range []connection.EndpointType{connection.Primary, connection.Secondary} {
		var cands []*endpointState
		for _, e := range c.eps {
			if e.ep.Type == typ && e.online.Load() {
				cands = append(cands, e)
			}
		}
		if len(cands) > 0 {
			return cands[rand.IntN(len(cands))], nil
		}
	}
	return nil, ErrNotConnected
}

// find returns the configured endpoint matching ep (Name, Endpoint, Type).
func (c *Client) find(ep connection.Endpoint) (*endpointState, bool) {
	for _, e := range c.eps {
		if sameEndpoint(e.ep, ep) {
			return e, true
		}
	}
	return nil, false
}

func sameEndpoint(a, b connection.Endpoint) bool {
	return strings.EqualFold(a.Name, b.Name) && a.Type == b.Type &&
		strings.EqualFold(endpointKey(a.Endpoint), endpointKey(b.Endpoint))
}

// endpointKey normalises an endpoint URL for comparison: no trailing slash and no default
// port, so that the extension's "https://host:443" names the same endpoint as
// connection's "https://host".
func endpointKey(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return s
	}
	scheme := strings.ToLower(u.Scheme)
	if p := u.Port(); (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		host := u.Hostname()
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		u.Host = host
	}
	return scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/")
}
