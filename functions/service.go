package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/management"
	"github.com/signalbox-io/signalbox/protocol"
)

// Options configures New.
type Options struct {
	// ConnectionStringSetting is the setting name K (connectionStringSetting in function.json);
	// default "AzureSignalRConnectionString".
	ConnectionStringSetting string
	// NewCredential builds credentials for identity-based settings; pass
	// identity.NewCredential (package connection/identity). Nil makes identity-based settings
	// an error, so programs using access keys do not link azidentity.
	NewCredential func(connection.IdentitySettings) (azcore.TokenCredential, error)
	// Client configures the REST client (timeouts, retries, health checks, HTTP client).
	// New first reads the app settings of management.OptionsFromSettings
	// (AzureSignalRHttpClientTimeout, AzureSignalRRetry:*, AzureSignalRHealthCheck:*); the
	// fields set here win over them.
	Client *management.ClientOptions
	// Logger receives diagnostics; nil discards. Tokens and keys are never logged.
	Logger *slog.Logger
	// Now is the clock of issued tokens; default time.Now.
	Now func() time.Time
}

// Service holds the bindings of one connection setting: its endpoints and the REST client
// that reaches them. It is safe for concurrent use. Build it once per process (the
// extension caches it per setting too) and Close it at shutdown.
type Service struct {
	endpoints []connection.Endpoint
	client    *management.Client
	log       *slog.Logger
	now       func() time.Time
}

// New resolves the endpoints of opts.ConnectionStringSetting from settings (see
// connection.Settings.Resolve) and builds a Service for them. Errors name the setting.
func New(settings *connection.Settings, opts *Options) (*Service, error) {
	if opts == nil {
		opts = &Options{}
	}
	eps, err := settings.Resolve(opts.ConnectionStringSetting, &connection.Options{NewCredential: opts.NewCredential})
	if err != nil {
		return nil, err // a *connection.SettingError naming the key, or ErrNoPrimaryEndpoint
	}
	fromSettings, err := management.OptionsFromSettings(settings)
	if err != nil {
		return nil, err
	}
	o := *opts
	o.Client = mergeClientOptions(fromSettings, opts.Client)
	return NewFromEndpoints(eps, &o)
}

// mergeClientOptions lays the fields set in code over the ones read from app settings.
func mergeClientOptions(settings, code *management.ClientOptions) *management.ClientOptions {
	out := *settings
	if code == nil {
		return &out
	}
	if code.HTTPClient != nil {
		out.HTTPClient = code.HTTPClient
	}
	if code.Timeout != 0 {
		out.Timeout = code.Timeout
	}
	if code.Retry != (management.RetryOptions{}) {
		out.Retry = code.Retry
	}
	h := code.Health
	if h.Interval != 0 {
		out.Health.Interval = h.Interval
	}
	if h.Timeout != 0 {
		out.Health.Timeout = h.Timeout
	}
	if h.Retries != 0 {
		out.Health.Retries = h.Retries
	}
	if h.RetryDelay != 0 {
		out.Health.RetryDelay = h.RetryDelay
	}
	if code.Logger != nil {
		out.Logger = code.Logger
	}
	if code.KeyRefreshInterval != 0 {
		out.KeyRefreshInterval = code.KeyRefreshInterval
	}
	if code.Now != nil {
		out.Now = code.Now
	}
	return &out
}

// NewFromMap is New over a map of settings (keys as in app settings or local.settings.json).
func NewFromMap(settings map[string]string, opts *Options) (*Service, error) {
	return New(connection.FromMap(settings), opts)
}

// NewFromEndpoints builds a Service for endpoints resolved elsewhere.
func NewFromEndpoints(endpoints []connection.Endpoint, opts *Options) (*Service, error) {
	if opts == nil {
		opts = &Options{}
	}
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("functions: %w", connection.ErrNotConfigured)
	}
	copts := management.ClientOptions{}
	if opts.Client != nil {
		copts = *opts.Client
	}
	if copts.Logger == nil {
		copts.Logger = opts.Logger
	}
	if copts.Now == nil {
		copts.Now = opts.Now
	}
	client, err := management.NewClient(endpoints, &copts)
	if err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	s := &Service{
		endpoints: append([]connection.Endpoint(nil), endpoints...),
		client:    client,
		log:       opts.Logger,
		now:       opts.Now,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Start begins the background endpoint health checks (only with more than one endpoint):
// without it every endpoint counts as online and failover does not happen. An endpoint that
// stops answering is out of negotiations within 9.5 s with the default settings (see
// management.HealthOptions).
func (s *Service) Start(ctx context.Context) error {
	if err := s.client.Start(ctx); err != nil {
		return fmt.Errorf("functions: start: %w", err)
	}
	return nil
}

// Close stops background work.
func (s *Service) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("functions: close: %w", err)
	}
	return nil
}

// Client is the REST client, for operations the bindings do not cover (existence checks,
// closing connections, ...).
func (s *Service) Client() *management.Client { return s.client }

// AccessKeys returns the access keys of the endpoints that have one.
func (s *Service) AccessKeys() []string {
	var keys []string
	for _, ep := range s.endpoints {
		if ep.AccessKey != "" {
			keys = append(keys, ep.AccessKey)
		}
	}
	return keys
}

// NewTrigger builds the signalRTrigger handler for this setting. Its signature keys are the
// access keys of every endpoint; as in the extension, validation is turned off when any
// endpoint has no access key (identity-based), which is logged once here. opts may set Code,
// MaxBodySize, Logger and SkipSignatureValidation (to turn validation off, e.g. behind a
// gateway that checks it); setting AccessKeys is an error, since the keys come from the
// endpoints (use the package-level NewTrigger to give keys by hand).
func (s *Service) NewTrigger(opts *TriggerOptions) (*Trigger, error) {
	var o TriggerOptions
	if opts != nil {
		o = *opts
	}
	if len(o.AccessKeys) > 0 {
		return nil, ErrTriggerAccessKeys
	}
	if o.Logger == nil {
		o.Logger = s.log
	}
	if !o.SkipSignatureValidation {
		for _, ep := range s.endpoints {
			if ep.AccessKey == "" {
				o.SkipSignatureValidation = true
				o.Logger.Warn("signalr trigger: an endpoint has no access key (identity-based), so upstream signatures cannot be validated", "endpoint", ep.String())
				break
			}
			o.AccessKeys = append(o.AccessKeys, ep.AccessKey)
		}
	}
	if o.SkipSignatureValidation {
		o.AccessKeys = nil
	}
	return NewTrigger(o)
}

// ErrTriggerAccessKeys is returned by Service.NewTrigger when TriggerOptions.AccessKeys is
// set: the service's endpoints give the keys.
var ErrTriggerAccessKeys = errors.New("functions: Service.NewTrigger takes the access keys from the configured endpoints; leave TriggerOptions.AccessKeys empty")

// Send delivers one message: to ConnectionID if set, else UserID, else GroupName, else to
// every connection of hub; on every endpoint (or the ones m.Endpoints names).
//
// With several endpoints, a failure on some of them is a *management.DeliveryError naming
// the endpoints that accepted the message (Delivered) and the ones that failed; when any
// accepted it, management.Delivered(err) is true and the message must not be sent again,
// or the clients of those endpoints get it twice. Output does that check itself. An
// Endpoints list that names no configured endpoint sends nothing and returns
// management.ErrNoEndpoint.
func (s *Service) Send(ctx context.Context, hub string, m Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	args, err := messageArgs(m.Arguments)
	if err != nil {
		return err
	}
	opts := &management.SendOptions{Endpoints: s.selectEndpoints(m.Endpoints)}
	switch {
	case m.ConnectionID != "":
		return s.client.SendToConnection(ctx, hub, m.ConnectionID, m.Target, args, opts)
	case m.UserID != "":
		return s.client.SendToUser(ctx, hub, m.UserID, m.Target, args, opts)
	case m.GroupName != "":
		return s.client.SendToGroup(ctx, hub, m.GroupName, m.Target, args, opts)
	default:
		return s.client.SendToAll(ctx, hub, m.Target, args, opts)
	}
}

// Apply performs one group action (see GroupAction for the rules). Failures on some of
// several endpoints are reported as for Send.
func (s *Service) Apply(ctx context.Context, hub string, a GroupAction) error {
	if err := a.Validate(); err != nil {
		return err
	}
	gopts := &management.GroupOptions{Endpoints: s.selectEndpoints(a.Endpoints)}
	switch {
	case a.ConnectionID != "":
		switch a.Action {
		case GroupAdd:
			return s.client.AddConnectionToGroup(ctx, hub, a.GroupName, a.ConnectionID, gopts)
		case GroupRemove:
			return s.client.RemoveConnectionFromGroup(ctx, hub, a.GroupName, a.ConnectionID, gopts)
		default:
			// The extension's switch has no case for removeAll on a connection: nothing happens.
			s.log.Debug("signalr output: removeAll with a connectionId is ignored", "hub", hub)
			return nil
		}
	default:
		switch a.Action {
		case GroupAdd:
			return s.client.AddUserToGroup(ctx, hub, a.GroupName, a.UserID, &management.AddUserToGroupOptions{Endpoints: gopts.Endpoints})
		case GroupRemove:
			return s.client.RemoveUserFromGroup(ctx, hub, a.GroupName, a.UserID, gopts)
		default:
			return s.client.RemoveUserFromAllGroups(ctx, hub, a.UserID, gopts)
		}
	}
}

// Output processes the items of a signalR output binding in order, stopping at the first
// failure. An item is a Message or GroupAction (or a pointer to one), a JSON object or array
// of objects (json.RawMessage, []byte or string, discriminated as ParseOutput does), a
// map[string]any, or a []any / []Message / []GroupAction of those.
//
// Output is what a function returns through: an item that reached at least one of its
// endpoints counts as done (the endpoints that failed are logged), so that the invocation
// succeeds and the Functions host does not run it again, which would deliver the item twice
// to the endpoints that accepted it. Use Send and Apply to see such partial failures.
func (s *Service) Output(ctx context.Context, hub string, items ...any) error {
	list, err := expandItems(items)
	if err != nil {
		return err
	}
	for i, it := range list {
		switch v := it.(type) {
		case *Message:
			err = s.Send(ctx, hub, *v)
		case *GroupAction:
			err = s.Apply(ctx, hub, *v)
		}
		err = s.delivered(hub, err)
		if err != nil {
			if len(list) == 1 {
				return err
			}
			return fmt.Errorf("functions: output item %d: %w", i, err)
		}
	}
	return nil
}

// delivered turns a partial delivery into success, logging the endpoints that failed.
func (s *Service) delivered(hub string, err error) error {
	var de *management.DeliveryError
	if err == nil || !errors.As(err, &de) || !de.Partial() {
		return err
	}
	failed := make([]string, len(de.Failed))
	for i, f := range de.Failed {
		failed[i] = f.Error()
	}
	s.log.Warn("signalr output: delivered, but not on every endpoint", "hub", hub, "operation", de.Op, "failed", failed)
	return nil
}

// selectEndpoints turns the "endpoints" of an output item into the management client's
// filter, which matches configured endpoints by name, endpoint and type.
func (s *Service) selectEndpoints(list []EndpointInfo) []connection.Endpoint {
	if list == nil {
		return nil
	}
	out := make([]connection.Endpoint, 0, len(list))
	for _, e := range list {
		typ, err := connection.ParseEndpointType(e.EndpointType)
		if err != nil {
			s.log.Warn("signalr output: ignoring an endpoint with an unknown type", "endpoint", e.Endpoint, "endpointType", e.EndpointType)
			continue
		}
		out = append(out, connection.Endpoint{Name: e.Name, Type: typ, Endpoint: e.Endpoint})
	}
	return out
}

// messageArgs converts arguments for the REST body: protocol values become raw JSON, and a
// missing list is an empty one.
func messageArgs(args []any) ([]any, error) {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
		if v, ok := a.(protocol.Value); ok {
			out[i] = nil
			if v.IsZero() {
				continue
			}
			b, err := v.JSON()
			if err != nil {
				return nil, fmt.Errorf("functions: argument %d: %w", i, err)
			}
			out[i] = json.RawMessage(b)
		}
	}
	return out, nil
}
