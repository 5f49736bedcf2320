package functions

import (
	"context"
	"encoding/json"
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
		name := opts.ConnectionStringSetting
		if name == "" {
			name = connection.DefaultSetting
		}
		return nil, fmt.Errorf("functions: settings %s: %w", name, err)
	}
	return NewFromEndpoints(eps, opts)
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

// Start begins the background endpoint health checks (only with more than one endpoint).
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
// MaxBodySize and Logger; its AccessKeys and SkipSignatureValidation are ignored.
func (s *Service) NewTrigger(opts *TriggerOptions) (*Trigger, error) {
	var o TriggerOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = s.log
	}
	o.AccessKeys, o.SkipSignatureValidation = nil, false
	for _, ep := range s.endpoints {
		if ep.AccessKey == "" {
			o.SkipSignatureValidation = true
			o.Logger.Warn("signalr trigger: an endpoint has no access key (identity-based), so upstream signatures cannot be validated", "endpoint", ep.String())
			break
		}
		o.AccessKeys = append(o.AccessKeys, ep.AccessKey)
	}
	if o.SkipSignatureValidation {
		o.AccessKeys = nil
	}
	t, err := NewTrigger(o)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Send delivers one message: to ConnectionID if set, else UserID, else GroupName, else to
// every connection of hub; on every endpoint (or the ones m.Endpoints names).
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
		err = s.client.SendToConnection(ctx, hub, m.ConnectionID, m.Target, args, opts)
	case m.UserID != "":
		err = s.client.SendToUser(ctx, hub, m.UserID, m.Target, args, opts)
	case m.GroupName != "":
		err = s.client.SendToGroup(ctx, hub, m.GroupName, m.Target, args, opts)
	default:
		err = s.client.SendToAll(ctx, hub, m.Target, args, opts)
	}
	if err != nil {
		return fmt.Errorf("functions: send %s to hub %s: %w", m.Target, hub, err)
	}
	return nil
}

// Apply performs one group action (see GroupAction for the rules).
func (s *Service) Apply(ctx context.Context, hub string, a GroupAction) error {
	if err := a.Validate(); err != nil {
		return err
	}
	gopts := &management.GroupOptions{Endpoints: s.selectEndpoints(a.Endpoints)}
	var err error
	switch {
	case a.ConnectionID != "":
		switch a.Action {
		case GroupAdd:
			err = s.client.AddConnectionToGroup(ctx, hub, a.GroupName, a.ConnectionID, gopts)
		case GroupRemove:
			err = s.client.RemoveConnectionFromGroup(ctx, hub, a.GroupName, a.ConnectionID, gopts)
		default:
			// The extension's switch has no case for removeAll on a connection: nothing happens.
			s.log.Debug("signalr output: removeAll with a connectionId is ignored", "hub", hub)
		}
	default:
		switch a.Action {
		case GroupAdd:
			err = s.client.AddUserToGroup(ctx, hub, a.GroupName, a.UserID, &management.AddUserToGroupOptions{Endpoints: gopts.Endpoints})
		case GroupRemove:
			err = s.client.RemoveUserFromGroup(ctx, hub, a.GroupName, a.UserID, gopts)
		default:
			err = s.client.RemoveUserFromAllGroups(ctx, hub, a.UserID, gopts)
		}
	}
	if err != nil {
		return fmt.Errorf("functions: group action %s on hub %s: %w", a.Action, hub, err)
	}
	return nil
}

// Output processes the items of a signalR output binding in order, stopping at the first
// failure. An item is a Message or GroupAction (or a pointer to one), a JSON object or array
// of objects (json.RawMessage, []byte or string, discriminated as ParseOutput does), a
// map[string]any, or a []any / []Message / []GroupAction of those.
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
		if err != nil {
			if len(list) == 1 {
				return err
			}
			return fmt.Errorf("functions: output item %d: %w", i, err)
		}
	}
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
			s.log.Warn("signalr output: ignoring an endpoint with an unknown type", "endpoint", e.Endpoint, "type", e.EndpointType)
			continue
		}
		out = append(out, connection.Endpoint{Name: e.Name, Type: typ, Endpoint: e.Endpoint})
	}
	if len(out) == 0 {
		s.log.Info("signalr output: the item names no known endpoint; it is sent nowhere")
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
