package management

import (
	"context"
	"time"

	"github.com/signalbox-io/signalbox/connection"
)

// SendOptions configures the send operations.
type SendOptions struct {
	// Excluded connection ids (SendToAll, SendToGroup, SendToGroups).
	Excluded []string
	// Endpoints restricts the operation to these configured endpoints, matched by Name,
	// Endpoint and Type. Nil means every endpoint; an empty non-nil slice means none.
	Endpoints []connection.Endpoint
}

// GroupOptions configures group membership operations.
type GroupOptions struct {
	Endpoints []connection.Endpoint // as in SendOptions
}

// AddUserToGroupOptions configures AddUserToGroup.
type AddUserToGroupOptions struct {
	// TTL of the membership; nil = persistent, 0 = only the user's current connections.
	TTL       *time.Duration
	Endpoints []connection.Endpoint
}

// ExistsOptions configures the existence checks.
type ExistsOptions struct {
	Endpoints []connection.Endpoint
}

// CloseOptions configures the close operations.
type CloseOptions struct {
	Excluded  []string // not used by CloseConnection
	Reason    string
	Endpoints []connection.Endpoint
}

// Arguments of the send operations (args) are a []any (marshalled with encoding/json),
// a json.RawMessage or []byte holding a JSON array, a []json.RawMessage, or nil (no
// arguments).

// SendToAll sends target(args...) to every connection of hub (POST /:send).
func (c *Client) SendToAll(ctx context.Context, hub, target string, args any, opts *SendOptions) error {
	return nil
}

// SendToUser sends to every connection of a user (POST /users/{user}/:send).
func (c *Client) SendToUser(ctx context.Context, hub, userID, target string, args any, opts *SendOptions) error {
	return nil
}

// SendToUsers sends to several users, one request per user.
func (c *Client) SendToUsers(ctx context.Context, hub string, userIDs []string, target string, args any, opts *SendOptions) error {
	return nil
}

// SendToGroup sends to the connections in a group (POST /groups/{group}/:send).
func (c *Client) SendToGroup(ctx context.Context, hub, group, target string, args any, opts *SendOptions) error {
	return nil
}

// SendToGroups sends to several groups, one request per group.
func (c *Client) SendToGroups(ctx context.Context, hub string, groups []string, target string, args any, opts *SendOptions) error {
	return nil
}

// SendToConnection sends to one connection (POST /connections/{id}/:send).
func (c *Client) SendToConnection(ctx context.Context, hub, connectionID, target string, args any, opts *SendOptions) error {
	return nil
}

// AddConnectionToGroup adds a connection to a group (PUT /groups/{group}/connections/{id}).
// An unknown connection (404 with Error.Connection.NotExisted) is not an error.
func (c *Client) AddConnectionToGroup(ctx context.Context, hub, group, connectionID string, opts *GroupOptions) error {
	return nil
}

// RemoveConnectionFromGroup (DELETE /groups/{group}/connections/{id}).
func (c *Client) RemoveConnectionFromGroup(ctx context.Context, hub, group, connectionID string, opts *GroupOptions) error {
	return nil
}

// RemoveConnectionFromAllGroups (DELETE /connections/{id}/groups).
func (c *Client) RemoveConnectionFromAllGroups(ctx context.Context, hub, connectionID string, opts *GroupOptions) error {
	return nil
}

// AddUserToGroup (PUT /users/{user}/groups/{group}[?ttl=seconds]).
func (c *Client) AddUserToGroup(ctx context.Context, hub, group, userID string, opts *AddUserToGroupOptions) error {
	return nil
}

// RemoveUserFromGroup (DELETE /users/{user}/groups/{group}).
func (c *Client) RemoveUserFromGroup(ctx context.Context, hub, group, userID string, opts *GroupOptions) error {
	return nil
}

// RemoveUserFromAllGroups (DELETE /users/{user}/groups).
func (c *Client) RemoveUserFromAllGroups(ctx context.Context, hub, userID string, opts *GroupOptions) error {
	return nil
}

// ConnectionExists (HEAD /connections/{id}).
func (c *Client) ConnectionExists(ctx context.Context, hub, connectionID string, opts *ExistsOptions) (bool, error) {
	return false, nil
}

// UserExists reports whether a user has a connection (HEAD /users/{user}).
func (c *Client) UserExists(ctx context.Context, hub, userID string, opts *ExistsOptions) (bool, error) {
	return false, nil
}

// GroupExists reports whether a group has a connection (HEAD /groups/{group}).
func (c *Client) GroupExists(ctx context.Context, hub, group string, opts *ExistsOptions) (bool, error) {
	return false, nil
}

// UserInGroup (GET /users/{user}/groups/{group}).
func (c *Client) UserInGroup(ctx context.Context, hub, group, userID string, opts *ExistsOptions) (bool, error) {
	return false, nil
}

// CloseConnection (DELETE /connections/{id}?reason=).
func (c *Client) CloseConnection(ctx context.Context, hub, connectionID string, opts *CloseOptions) error {
	return nil
}

// CloseAllConnections (POST /:closeConnections).
func (c *Client) CloseAllConnections(ctx context.Context, hub string, opts *CloseOptions) error {
	return nil
}

// CloseGroupConnections (POST /groups/{group}/:closeConnections).
func (c *Client) CloseGroupConnections(ctx context.Context, hub, group string, opts *CloseOptions) error {
	return nil
}

// CloseUserConnections (POST /users/{user}/:closeConnections).
func (c *Client) CloseUserConnections(ctx context.Context, hub, userID string, opts *CloseOptions) error {
	return nil
}
