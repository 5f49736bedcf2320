package restapi

import (
	"context"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub"
)

// Hubs is what the REST API asks of the service: the operations of the data
// plane on the hubs, their connections, users and groups, wherever those live.
// It is the REST layer's own interface, in the spirit of ASP.NET Core's
// HubLifetimeManager: one node answers from its memory, a cluster node may need
// the network, so every call takes a context and may fail.
//
// An error means the operation could not be carried out (for example the
// cluster's broker is unreachable) and nothing is known to have happened; the
// REST API answers 503. Absence is not an error: it is the false of the boolean
// results. Hub names are effective names (lower-case, application-prefixed).
type Hubs interface {
	SendAll(ctx context.Context, hub string, p *hub.Payload, excluded []string) error
	SendUser(ctx context.Context, hub, user string, p *hub.Payload) error
	// SendConnection succeeds for an absent connection too, as the service does.
	SendConnection(ctx context.Context, hub, connID string, p *hub.Payload) error
	SendGroup(ctx context.Context, hub, group string, p *hub.Payload, excluded []string) error

	ConnectionExists(ctx context.Context, hub, connID string) (bool, error)
	UserExists(ctx context.Context, hub, user string) (bool, error)
	GroupExists(ctx context.Context, hub, group string) (bool, error)
	// UserInGroup is true when user has a live persistent membership of group or
	// any of its connections is in the group.
	UserInGroup(ctx context.Context, hub, user, group string) (bool, error)
	// GroupConnections lists the connections of group sorted by connection id.
	GroupConnections(ctx context.Context, hub, group string) ([]hub.ConnectionInfo, error)

	// CloseConnection reports false when there is no such connection.
	CloseConnection(ctx context.Context, hub, connID, reason string) (bool, error)
	CloseAll(ctx context.Context, hub string, excluded []string, reason string) error
	CloseGroup(ctx context.Context, hub, group string, excluded []string, reason string) error
	CloseUser(ctx context.Context, hub, user string, excluded []string, reason string) error

	// AddToGroup reports false when there is no such connection.
	AddToGroup(ctx context.Context, hub, group, connID string) (bool, error)
	// RemoveFromGroup succeeds for an absent connection or membership.
	RemoveFromGroup(ctx context.Context, hub, group, connID string) error
	RemoveFromAllGroups(ctx context.Context, hub, connID string) error

	// AddUserToGroup with ttl nil or > 0 records a persistent membership that
	// applies to the user's current and later connections; with ttl <= 0 only the
	// current connections join and nothing is remembered.
	AddUserToGroup(ctx context.Context, hub, user, group string, ttl *time.Duration) error
	RemoveUserFromGroup(ctx context.Context, hub, user, group string) error
	RemoveUserFromAllGroups(ctx context.Context, hub, user string) error
}
