package functions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/management"
)

// Hub is one hub of a Service: what C#'s ServerlessHub gives a class-based hub, bound to the
// hub's name so that no method repeats it. Clients sends messages, Groups and UserGroups
// change group membership, ClientManager closes connections and checks existence, and
// Negotiate issues connection info.
//
// Embed a *Hub in a hub struct and register it with Service.RegisterHub, which sets the
// field; the hub's methods then write c.Clients.All().Send(ctx, "newMessage", text).
//
// With several endpoints, an operation that some of its endpoints accepted succeeds (the
// failed endpoints are logged), as the output binding does: returning its error from a hub
// method would fail an invocation whose effect already happened. Use Service.Send and
// Service.Apply to see such partial failures. An operation no endpoint accepted fails.
type Hub struct {
	// Clients sends hub method invocations to the hub's clients.
	Clients Clients
	// Groups adds connections to and removes them from groups.
	Groups Groups
	// UserGroups adds users to and removes them from groups (all their connections, now and
	// later).
	UserGroups UserGroups
	// ClientManager closes connections and checks whether connections, users and groups
	// exist.
	ClientManager ClientManager

	name      string
	svc       *Service
	endpoints []connection.Endpoint // nil = every endpoint
}

// Hub returns the hub called name of s.
func (s *Service) Hub(name string) *Hub { return s.newHub(strings.ToLower(name), nil) }

func (s *Service) newHub(name string, eps []connection.Endpoint) *Hub {
	h := &Hub{name: name, svc: s, endpoints: eps}
	h.Clients = Clients{h}
	h.Groups = Groups{h}
	h.UserGroups = UserGroups{h}
	h.ClientManager = ClientManager{h}
	return h
}

// Name is the hub's name (lower case, as the service uses it).
func (h *Hub) Name() string { return h.name }

// Service is the Service the hub belongs to.
func (h *Hub) Service() *Service { return h.svc }

// WithEndpoints returns the hub restricted to the configured endpoints with these names
// (C#'s WithEndpoints): its operations go to them only. An unknown name is ErrUnknownEndpoint.
func (h *Hub) WithEndpoints(names ...string) (*Hub, error) {
	eps := make([]connection.Endpoint, 0, len(names))
	for _, n := range names {
		ep, err := h.svc.endpointNamed(n)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}
	return h.svc.newHub(h.name, eps), nil
}

// Negotiate returns connection info for the hub (signalRConnectionInfo): see
// ConnectionInfoOptions for the user, claims, lifetime and endpoint.
func (h *Hub) Negotiate(ctx context.Context, opts *ConnectionInfoOptions) (ConnectionInfo, error) {
	return h.svc.ConnectionInfo(ctx, h.name, opts)
}

// NegotiateHandler serves the hub's negotiate function (see Service.NegotiateHandler).
func (h *Hub) NegotiateHandler(opts *NegotiateOptions) http.Handler {
	return h.svc.NegotiateHandler(h.name, opts)
}

// done applies the binding rule: delivered somewhere is done.
func (h *Hub) done(err error) error { return h.svc.delivered(h.name, err) }

// Clients picks the recipients of a message (C#'s Clients.All, Client, User, Group, ...).
type Clients struct{ h *Hub }

// ClientProxy sends to the recipients Clients picked.
type ClientProxy struct {
	h    *Hub
	kind string // all, user, users, group, groups, connection
	ids  []string
	excl []string
}

// All is every connection of the hub.
func (c Clients) All() ClientProxy { return ClientProxy{h: c.h, kind: "all"} }

// AllExcept is every connection of the hub but the excluded ones.
func (c Clients) AllExcept(excludedConnectionIDs ...string) ClientProxy {
	return ClientProxy{h: c.h, kind: "all", excl: excludedConnectionIDs}
}

// Client is one connection.
func (c Clients) Client(connectionID string) ClientProxy {
	return ClientProxy{h: c.h, kind: "connection", ids: []string{connectionID}}
}

// User is every connection of one user.
func (c Clients) User(userID string) ClientProxy {
	return ClientProxy{h: c.h, kind: "user", ids: []string{userID}}
}

// Users is every connection of these users.
func (c Clients) Users(userIDs ...string) ClientProxy {
	return ClientProxy{h: c.h, kind: "users", ids: userIDs}
}

// Group is every connection in one group.
func (c Clients) Group(name string) ClientProxy {
	return ClientProxy{h: c.h, kind: "group", ids: []string{name}}
}

// GroupExcept is every connection in one group but the excluded ones.
func (c Clients) GroupExcept(name string, excludedConnectionIDs ...string) ClientProxy {
	return ClientProxy{h: c.h, kind: "group", ids: []string{name}, excl: excludedConnectionIDs}
}

// Groups is every connection in these groups.
func (c Clients) Groups(names ...string) ClientProxy {
	return ClientProxy{h: c.h, kind: "groups", ids: names}
}

// Send invokes the client method target with args on the recipients (C#'s SendAsync). Each
// argument is marshalled with encoding/json (json.RawMessage and protocol.Value pass through).
func (p ClientProxy) Send(ctx context.Context, target string, args ...any) error {
	if target == "" {
		return ErrNoTarget
	}
	a, err := messageArgs(args)
	if err != nil {
		return err
	}
	c, hub := p.h.svc.client, p.h.name
	opts := &management.SendOptions{Excluded: p.excl, Endpoints: p.h.endpoints}
	switch p.kind {
	case "all":
		err = c.SendToAll(ctx, hub, target, a, opts)
	case "connection":
		err = c.SendToConnection(ctx, hub, p.ids[0], target, a, opts)
	case "user":
		err = c.SendToUser(ctx, hub, p.ids[0], target, a, opts)
	case "users":
		err = each(p.ids, func(id string) error { return c.SendToUser(ctx, hub, id, target, a, opts) })
	case "group":
		err = c.SendToGroup(ctx, hub, p.ids[0], target, a, opts)
	case "groups":
		err = each(p.ids, func(g string) error { return c.SendToGroup(ctx, hub, g, target, a, opts) })
	}
	return p.h.done(err)
}

// each runs fn for every id; partial deliveries count as done, other errors are joined.
func each(ids []string, fn func(string) error) error {
	var errs []error
	for _, id := range ids {
		if err := fn(id); !management.Delivered(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Groups changes the groups of connections (C#'s Groups).
type Groups struct{ h *Hub }

func (g Groups) opts() *management.GroupOptions {
	return &management.GroupOptions{Endpoints: g.h.endpoints}
}

// Add adds a connection to a group.
func (g Groups) Add(ctx context.Context, connectionID, group string) error {
	return g.h.done(g.h.svc.client.AddConnectionToGroup(ctx, g.h.name, group, connectionID, g.opts()))
}

// Remove removes a connection from a group.
func (g Groups) Remove(ctx context.Context, connectionID, group string) error {
	return g.h.done(g.h.svc.client.RemoveConnectionFromGroup(ctx, g.h.name, group, connectionID, g.opts()))
}

// RemoveFromAll removes a connection from every group.
func (g Groups) RemoveFromAll(ctx context.Context, connectionID string) error {
	return g.h.done(g.h.svc.client.RemoveConnectionFromAllGroups(ctx, g.h.name, connectionID, g.opts()))
}

// UserGroups changes the groups of users (C#'s UserGroups).
type UserGroups struct{ h *Hub }

// Add adds a user to a group.
func (g UserGroups) Add(ctx context.Context, userID, group string) error {
	return g.h.done(g.h.svc.client.AddUserToGroup(ctx, g.h.name, group, userID, &management.AddUserToGroupOptions{Endpoints: g.h.endpoints}))
}

// AddFor adds a user to a group for ttl (whole seconds).
func (g UserGroups) AddFor(ctx context.Context, userID, group string, ttl time.Duration) error {
	return g.h.done(g.h.svc.client.AddUserToGroup(ctx, g.h.name, group, userID, &management.AddUserToGroupOptions{TTL: &ttl, Endpoints: g.h.endpoints}))
}

// Remove removes a user from a group.
func (g UserGroups) Remove(ctx context.Context, userID, group string) error {
	return g.h.done(g.h.svc.client.RemoveUserFromGroup(ctx, g.h.name, group, userID, &management.GroupOptions{Endpoints: g.h.endpoints}))
}

// RemoveFromAll removes a user from every group.
func (g UserGroups) RemoveFromAll(ctx context.Context, userID string) error {
	return g.h.done(g.h.svc.client.RemoveUserFromAllGroups(ctx, g.h.name, userID, &management.GroupOptions{Endpoints: g.h.endpoints}))
}

// IsInGroup reports whether a user is in a group.
func (g UserGroups) IsInGroup(ctx context.Context, userID, group string) (bool, error) {
	return g.h.svc.client.UserInGroup(ctx, g.h.name, group, userID, &management.ExistsOptions{Endpoints: g.h.endpoints})
}

// ClientManager closes connections and checks existence (C#'s ClientManager).
type ClientManager struct{ h *Hub }

// CloseConnection closes a connection; reason goes to the client ("" for none).
func (m ClientManager) CloseConnection(ctx context.Context, connectionID, reason string) error {
	return m.h.done(m.h.svc.client.CloseConnection(ctx, m.h.name, connectionID, &management.CloseOptions{Reason: reason, Endpoints: m.h.endpoints}))
}

// ConnectionExists reports whether a connection is connected.
func (m ClientManager) ConnectionExists(ctx context.Context, connectionID string) (bool, error) {
	return m.h.svc.client.ConnectionExists(ctx, m.h.name, connectionID, &management.ExistsOptions{Endpoints: m.h.endpoints})
}

// UserExists reports whether a user has a connection.
func (m ClientManager) UserExists(ctx context.Context, userID string) (bool, error) {
	return m.h.svc.client.UserExists(ctx, m.h.name, userID, &management.ExistsOptions{Endpoints: m.h.endpoints})
}

// GroupExists reports whether a group has a connection.
func (m ClientManager) GroupExists(ctx context.Context, group string) (bool, error) {
	return m.h.svc.client.GroupExists(ctx, m.h.name, group, &management.ExistsOptions{Endpoints: m.h.endpoints})
}

// ErrUnknownEndpoint is returned for an endpoint name that is not configured.
var ErrUnknownEndpoint = errors.New("functions: no configured endpoint has this name")

// endpointNamed finds a configured endpoint by name, case-insensitively ("" is the endpoint
// of the connection string setting itself).
func (s *Service) endpointNamed(name string) (connection.Endpoint, error) {
	for _, ep := range s.endpoints {
		if strings.EqualFold(ep.Name, name) {
			return ep, nil
		}
	}
	return connection.Endpoint{}, fmt.Errorf("%w: %q", ErrUnknownEndpoint, name)
}

// RegisterHub registers a class-based hub (see the package-level RegisterHub) and binds it
// to this Service: an embedded *Hub field that is nil is set to s.Hub(name), so the hub's
// methods use c.Clients, c.Groups, c.UserGroups and c.Negotiate without naming the hub. A
// *Hub already set must be of this Service and name. hub must be a pointer for the field
// to be set.
func (s *Service) RegisterHub(t *Trigger, hub any, opts *HubOptions) error {
	name, err := hubName(hub, opts)
	if err != nil {
		return err
	}
	if err := s.bindHub(hub, name); err != nil {
		return fmt.Errorf("functions: RegisterHub %s: %w", name, err)
	}
	return RegisterHub(t, hub, opts)
}

var hubType = reflect.TypeFor[*Hub]()

func (s *Service) bindHub(hub any, name string) error {
	v := reflect.ValueOf(hub)
	st := v.Type()
	for st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if !f.Anonymous || f.Type != hubType {
			continue
		}
		if v.Kind() != reflect.Pointer || v.IsNil() {
			if v.Kind() == reflect.Struct {
				if h := v.Field(i).Interface().(*Hub); h != nil {
					return checkHub(h, s, name)
				}
			}
			return errors.New("pass a pointer to the hub so that its *functions.Hub can be set")
		}
		fv := v.Elem().Field(i)
		if h := fv.Interface().(*Hub); h != nil {
			return checkHub(h, s, name)
		}
		fv.Set(reflect.ValueOf(s.Hub(name)))
		return nil
	}
	return nil
}

func checkHub(h *Hub, s *Service, name string) error {
	if h.svc != s || h.name != name {
		return fmt.Errorf("its *functions.Hub is hub %q of another Service or name", h.name)
	}
	return nil
}
