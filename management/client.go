// Package management is a typed client for the SignalR Service data-plane REST API
// (api-version 2022-06-01 paths, /api/hubs/{hub}/...), usable against Azure SignalR Service
// and against Signalbox. It is what the output binding of the Azure Functions SignalR
// extension does underneath, plus what the extension cannot do in its default mode: with
// several endpoints, messages and group actions go to every endpoint, and negotiation picks
// an online endpoint using background health checks.
package management

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/connection"
)

// APIVersion is the REST api-version the client speaks.
const APIVersion = "2022-06-01"

// Scope is the Microsoft Entra scope of bearer tokens for identity-based endpoints.
const Scope = "https://signalr.azure.com/.default"

// ErrNotConnected is returned by PickEndpoint when no endpoint is online.
var ErrNotConnected = errors.New("Azure SignalR Service is not connected yet, please try again later.")

// RetryMode selects how the delay between retries grows.
type RetryMode int

const (
	RetryFixed       RetryMode = iota // every retry waits Delay
	RetryExponential                  // Delay, 2×Delay, 4×Delay, ... capped at MaxDelay
)

// RetryOptions configures retries of failed REST calls. The zero value (MaxRetries 0)
// disables retries, as the extension does by default. Message sends are retried only for
// status codes above 500; other calls also for 500, 408 and transport errors or timeouts.
type RetryOptions struct {
	MaxRetries int
	Delay      time.Duration // default 800 ms
	MaxDelay   time.Duration // default 1 min
	Mode       RetryMode
}

// HealthOptions configures the background health checks (HEAD /api/health) that run
// when the client has more than one endpoint.
type HealthOptions struct {
	Interval   time.Duration // default 2 min
	Timeout    time.Duration // per request, default 2 s
	Retries    int           // extra attempts before an endpoint is marked offline, default 2; <0 = none
	RetryDelay time.Duration // default 3 s
}

// ClientOptions configures NewClient; nil means defaults.
type ClientOptions struct {
	// HTTPClient sends the requests; default a client with Timeout.
	HTTPClient *http.Client
	// Timeout bounds each HTTP request; default 100 s.
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

// Client calls the REST API of one or more endpoints. It is safe for concurrent use.
type Client struct {
	eps []*endpointState
}

type endpointState struct {
	ep connection.Endpoint
}

// NewClient returns a client for endpoints (as returned by connection.Settings.Resolve).
func NewClient(endpoints []connection.Endpoint, opts *ClientOptions) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, connection.ErrNotConfigured
	}
	c := &Client{}
	for _, ep := range endpoints {
		c.eps = append(c.eps, &endpointState{ep: ep})
	}
	return c, nil
}

// Start begins background health checks when there is more than one endpoint; ctx
// bounds only the start itself. Close stops them.
func (c *Client) Start(ctx context.Context) error { return nil }

// Close stops background work and waits for it to end.
func (c *Client) Close() error { return nil }

// CheckHealth checks every endpoint once and updates its online state.
func (c *Client) CheckHealth(ctx context.Context) {}

// Endpoints returns the configured endpoints with their online state.
func (c *Client) Endpoints() []EndpointStatus {
	out := make([]EndpointStatus, len(c.eps))
	for i, e := range c.eps {
		out[i] = EndpointStatus{Endpoint: e.ep, Online: true}
	}
	return out
}

// PickEndpoint selects the endpoint for a negotiation: the only endpoint if there is one,
// else a random online primary, else a random online secondary, else ErrNotConnected.
func (c *Client) PickEndpoint(hub string) (connection.Endpoint, error) {
	return c.eps[0].ep, nil
}

// ClientAccess is what a negotiate function returns: the URL a client connects to and
// its access token. It marshals to {"url":..,"accessToken":..}.
type ClientAccess struct {
	URL         string              `json:"url"`
	AccessToken string              `json:"accessToken"`
	Endpoint    connection.Endpoint `json:"-"`
}

// ClientTokenOptions configures ClientToken.
type ClientTokenOptions struct {
	UserID string       // -> asrs.s.uid
	Claims []auth.Claim // copied as given (system-claim renaming is the caller's job)
	// Lifetime of the token; default 1 h.
	Lifetime time.Duration
	// Endpoint mints for this endpoint instead of PickEndpoint(hub).
	Endpoint *connection.Endpoint
}

// ClientToken mints a client access token locally: signed with the endpoint's AccessKey,
// or for identity-based endpoints with a key fetched from the service.
func (c *Client) ClientToken(ctx context.Context, hub string, opts *ClientTokenOptions) (ClientAccess, error) {
	return ClientAccess{}, errors.New("not implemented")
}

// GenerateClientTokenOptions configures GenerateClientToken.
type GenerateClientTokenOptions struct {
	UserID   string
	Lifetime time.Duration // rounded up to minutes; default 60 min
	Roles    []string
	Groups   []string
	Endpoint *connection.Endpoint // default PickEndpoint(hub)
}

// GenerateClientToken asks the service to mint a client token (POST /:generateToken).
func (c *Client) GenerateClientToken(ctx context.Context, hub string, opts *GenerateClientTokenOptions) (ClientAccess, error) {
	return ClientAccess{}, errors.New("not implemented")
}
