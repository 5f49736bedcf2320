package management

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
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
	// TTL of the membership, whole seconds; nil = persistent, 0 = only the user's current
	// connections.
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

// payload is the JSON body of a send, with the SDK's PascalCase names.
type payload struct {
	Target    string          `json:"Target"`
	Arguments json.RawMessage `json:"Arguments"`
}

// encodeArgs turns args into a JSON array. Accepted: nil, a JSON array as
// json.RawMessage or []byte, []json.RawMessage, or any slice or array (encoding/json).
func encodeArgs(args any) (json.RawMessage, error) {
	switch a := args.(type) {
	case nil:
		return json.RawMessage("[]"), nil
	case json.RawMessage:
		return rawArray(a)
	case []byte:
		return rawArray(a)
	}
	k := reflect.TypeOf(args).Kind()
	if k != reflect.Slice && k != reflect.Array {
		return nil, fmt.Errorf("management: arguments must be a slice, an array or a JSON array, not %T", args)
	}
	if rv := reflect.ValueOf(args); k == reflect.Slice && rv.IsNil() {
		return json.RawMessage("[]"), nil
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("management: encoding arguments: %w", err)
	}
	return b, nil
}

func rawArray(b []byte) (json.RawMessage, error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '[' || !json.Valid(t) {
		return nil, errors.New("management: arguments must be a JSON array")
	}
	return json.RawMessage(t), nil
}

func messageBody(target string, args any) ([]byte, error) {
	if target == "" {
		return nil, errors.New("management: target is empty")
	}
	a, err := encodeArgs(args)
	if err != nil {
		return nil, err
	}
	return json.Marshal(payload{Target: target, Arguments: a})
}

func excludedQuery(excluded []string) url.Values {
	if len(excluded) == 0 {
		return nil
	}
	q := url.Values{}
	for _, id := range excluded {
		if id != "" {
			q.Add("excluded", id)
		}
	}
	return q
}

// sendTo posts a message to path under hub on every selected endpoint.
func (c *Client) sendTo(ctx context.Context, op, hub, target string, args any, opts *SendOptions, parts ...part) error {
	if opts == nil {
		opts = &SendOptions{}
	}
	path, err := hubPath(hub, parts...)
	if err != nil {
		return err
	}
	body, err := messageBody(target, args)
	if err != nil {
		return err
	}
	cl := call{method: http.MethodPost, path: path, body: body, message: true, query: excludedQuery(opts.Excluded)}
	return c.exec(ctx, op, cl, opts.Endpoints)
}

// exec runs cl on every selected endpoint.
func (c *Client) exec(ctx context.Context, op string, cl call, filter []connection.Endpoint) error {
	err := c.fanout(ctx, op, filter, func(ctx context.Context, es *endpointState) error {
		_, _, err := c.do(ctx, es, cl)
		return err
	})
	var de *DeliveryError
	if err != nil && !errors.As(err, &de) {
		return fmt.Errorf("management: %s: %w", op, err)
	}
	return err
}

// check runs a HEAD/GET existence check: 2xx = true, 404 with one of codes = false.
func (c *Client) check(ctx context.Context, op, method, path string, codes []string, opts *ExistsOptions) (bool, error) {
	var filter []connection.Endpoint
	if opts != nil {
		filter = opts.Endpoints
	}
	cl := call{method: method, path: path, tolerate: codes}
	ok, err := c.fanoutBool(ctx, op, filter, func(ctx context.Context, es *endpointState) (bool, error) {
		_, found, err := c.do(ctx, es, cl)
		return found, err
	})
	var de *DeliveryError
	if errors.As(err, &de) && de.Partial() && onlySkipped(de) {
		// Every endpoint that was asked answered "no"; the offline ones cannot be asked, as
		// before they went offline.
		return false, nil
	}
	if err != nil && de == nil {
		return false, fmt.Errorf("management: %s: %w", op, err)
	}
	return ok, err
}

// onlySkipped reports whether every failure of de is an offline endpoint that was skipped.
func onlySkipped(de *DeliveryError) bool {
	for _, f := range de.Failed {
		if !errors.Is(f.Err, ErrEndpointOffline) {
			return false
		}
	}
	return true
}

// SendToAll sends target(args...) to every connection of hub (POST /:send).
// Arguments (args) are a []any or any other slice (encoded with encoding/json), a JSON
// array as json.RawMessage or []byte, a []json.RawMessage, or nil for none.
func (c *Client) SendToAll(ctx context.Context, hub, target string, args any, opts *SendOptions) error {
	return c.sendTo(ctx, "send to all", hub, target, args, opts, lit(":send"))
}

// SendToUser sends to every connection of a user (POST /users/{user}/:send).
func (c *Client) SendToUser(ctx context.Context, hub, userID, target string, args any, opts *SendOptions) error {
	return c.sendTo(ctx, "send to user", hub, target, args, withoutExcluded(opts), lit("users"), userSeg(userID), lit(":send"))
}

// SendToUsers sends to several users, one request per user; a failure for one user does
// not stop the others, the errors are joined.
func (c *Client) SendToUsers(ctx context.Context, hub string, userIDs []string, target string, args any, opts *SendOptions) error {
	var errs []error
	for _, u := range userIDs {
		errs = append(errs, c.SendToUser(ctx, hub, u, target, args, opts))
	}
	return errors.Join(errs...)
}

// SendToGroup sends to the connections in a group (POST /groups/{group}/:send).
func (c *Client) SendToGroup(ctx context.Context, hub, group, target string, args any, opts *SendOptions) error {
	return c.sendTo(ctx, "send to group", hub, target, args, opts, lit("groups"), groupSeg(group), lit(":send"))
}

// SendToGroups sends to several groups, one request per group; errors are joined.
func (c *Client) SendToGroups(ctx context.Context, hub string, groups []string, target string, args any, opts *SendOptions) error {
	var errs []error
	for _, g := range groups {
		errs = append(errs, c.SendToGroup(ctx, hub, g, target, args, opts))
	}
	return errors.Join(errs...)
}

// SendToConnection sends to one connection (POST /connections/{id}/:send).
func (c *Client) SendToConnection(ctx context.Context, hub, connectionID, target string, args any, opts *SendOptions) error {
	return c.sendTo(ctx, "send to connection", hub, target, args, withoutExcluded(opts), lit("connections"), connSeg(connectionID), lit(":send"))
}

func withoutExcluded(opts *SendOptions) *SendOptions {
	if opts == nil {
		return nil
	}
	return &SendOptions{Endpoints: opts.Endpoints}
}

func groupFilter(opts *GroupOptions) []connection.Endpoint {
	if opts == nil {
		return nil
	}
	return opts.Endpoints
}

// AddConnectionToGroup adds a connection to a group (PUT /groups/{group}/connections/{id}).
// An unknown connection (404 with Error.Connection.NotExisted) is not an error: with
// several endpoints only the one holding the connection knows it. A connection already
// in as many groups as the service allows is not added: the error matches ErrTooManyGroups.
func (c *Client) AddConnectionToGroup(ctx context.Context, hub, group, connectionID string, opts *GroupOptions) error {
	path, err := hubPath(hub, lit("groups"), groupSeg(group), lit("connections"), connSeg(connectionID))
	if err != nil {
		return err
	}
	cl := call{method: http.MethodPut, path: path, tolerate: []string{CodeConnectionNotExistedError, CodeConnectionNotExisted}}
	return c.exec(ctx, "add connection to group", cl, groupFilter(opts))
}

// RemoveConnectionFromGroup (DELETE /groups/{group}/connections/{id}).
func (c *Client) RemoveConnectionFromGroup(ctx context.Context, hub, group, connectionID string, opts *GroupOptions) error {
	path, err := hubPath(hub, lit("groups"), groupSeg(group), lit("connections"), connSeg(connectionID))
	if err != nil {
		return err
	}
	cl := call{method: http.MethodDelete, path: path, tolerate: []string{CodeConnectionNotExistedError, CodeConnectionNotExisted}}
	return c.exec(ctx, "remove connection from group", cl, groupFilter(opts))
}

// RemoveConnectionFromAllGroups (DELETE /connections/{id}/groups).
func (c *Client) RemoveConnectionFromAllGroups(ctx context.Context, hub, connectionID string, opts *GroupOptions) error {
	path, err := hubPath(hub, lit("connections"), connSeg(connectionID), lit("groups"))
	if err != nil {
		return err
	}
	cl := call{method: http.MethodDelete, path: path, tolerate: []string{CodeConnectionNotExistedError, CodeConnectionNotExisted}}
	return c.exec(ctx, "remove connection from all groups", cl, groupFilter(opts))
}

// AddUserToGroup (PUT /users/{user}/groups/{group}[?ttl=seconds]). A user that already
// has as many group memberships as the service allows is not added: the error matches
// ErrTooManyGroups.
func (c *Client) AddUserToGroup(ctx context.Context, hub, group, userID string, opts *AddUserToGroupOptions) error {
	if opts == nil {
		opts = &AddUserToGroupOptions{}
	}
	path, err := hubPath(hub, lit("users"), userSeg(userID), lit("groups"), groupSeg(group))
	if err != nil {
		return err
	}
	cl := call{method: http.MethodPut, path: path}
	if opts.TTL != nil {
		secs := int64(*opts.TTL / time.Second)
		if secs < 0 || secs > 1<<31-1 {
			return fmt.Errorf("management: ttl %v out of range", *opts.TTL)
		}
		cl.query = url.Values{"ttl": {strconv.FormatInt(secs, 10)}}
	}
	return c.exec(ctx, "add user to group", cl, opts.Endpoints)
}

// RemoveUserFromGroup (DELETE /users/{user}/groups/{group}).
func (c *Client) RemoveUserFromGroup(ctx context.Context, hub, group, userID string, opts *GroupOptions) error {
	path, err := hubPath(hub, lit("users"), userSeg(userID), lit("groups"), groupSeg(group))
	if err != nil {
		return err
	}
	return c.exec(ctx, "remove user from group", call{method: http.MethodDelete, path: path}, groupFilter(opts))
}

// RemoveUserFromAllGroups (DELETE /users/{user}/groups).
func (c *Client) RemoveUserFromAllGroups(ctx context.Context, hub, userID string, opts *GroupOptions) error {
	path, err := hubPath(hub, lit("users"), userSeg(userID), lit("groups"))
	if err != nil {
		return err
	}
	return c.exec(ctx, "remove user from all groups", call{method: http.MethodDelete, path: path}, groupFilter(opts))
}

// ConnectionExists (HEAD /connections/{id}); false only for a 404 with
// Warning.Connection.NotExisted, any other 404 is an error.
func (c *Client) ConnectionExists(ctx context.Context, hub, connectionID string, opts *ExistsOptions) (bool, error) {
	path, err := hubPath(hub, lit("connections"), connSeg(connectionID))
	if err != nil {
		return false, err
	}
	return c.check(ctx, "connection exists", http.MethodHead, path, []string{CodeConnectionNotExisted}, opts)
}

// UserExists reports whether a user has a connection (HEAD /users/{user}).
func (c *Client) UserExists(ctx context.Context, hub, userID string, opts *ExistsOptions) (bool, error) {
	path, err := hubPath(hub, lit("users"), userSeg(userID))
	if err != nil {
		return false, err
	}
	return c.check(ctx, "user exists", http.MethodHead, path, []string{CodeUserNotExisted}, opts)
}

// GroupExists reports whether a group has a connection (HEAD /groups/{group}).
func (c *Client) GroupExists(ctx context.Context, hub, group string, opts *ExistsOptions) (bool, error) {
	path, err := hubPath(hub, lit("groups"), groupSeg(group))
	if err != nil {
		return false, err
	}
	return c.check(ctx, "group exists", http.MethodHead, path, []string{CodeGroupNotExisted}, opts)
}

// UserInGroup (GET /users/{user}/groups/{group}, as the SDK).
func (c *Client) UserInGroup(ctx context.Context, hub, group, userID string, opts *ExistsOptions) (bool, error) {
	path, err := hubPath(hub, lit("users"), userSeg(userID), lit("groups"), groupSeg(group))
	if err != nil {
		return false, err
	}
	return c.check(ctx, "user in group", http.MethodGet, path, []string{CodeUserNotInGroup, CodeUserNotExisted, CodeGroupNotExisted}, opts)
}

func closeQuery(opts *CloseOptions, withExcluded bool) url.Values {
	q := url.Values{}
	if withExcluded {
		q = excludedQuery(opts.Excluded)
		if q == nil {
			q = url.Values{}
		}
	}
	if opts.Reason != "" {
		q.Set("reason", opts.Reason)
	}
	return q
}

// CloseConnection (DELETE /connections/{id}?reason=); an unknown connection (404 with
// Warning.Connection.NotExisted) is not an error.
func (c *Client) CloseConnection(ctx context.Context, hub, connectionID string, opts *CloseOptions) error {
	if opts == nil {
		opts = &CloseOptions{}
	}
	path, err := hubPath(hub, lit("connections"), connSeg(connectionID))
	if err != nil {
		return err
	}
	cl := call{method: http.MethodDelete, path: path, query: closeQuery(opts, false),
		tolerate: []string{CodeConnectionNotExisted, CodeConnectionNotExistedError}}
	return c.exec(ctx, "close connection", cl, opts.Endpoints)
}

func (c *Client) closeMany(ctx context.Context, op, hub string, opts *CloseOptions, parts ...part) error {
	if opts == nil {
		opts = &CloseOptions{}
	}
	path, err := hubPath(hub, parts...)
	if err != nil {
		return err
	}
	cl := call{method: http.MethodPost, path: path, query: closeQuery(opts, true)}
	return c.exec(ctx, op, cl, opts.Endpoints)
}

// CloseAllConnections (POST /:closeConnections?excluded=&reason=).
func (c *Client) CloseAllConnections(ctx context.Context, hub string, opts *CloseOptions) error {
	return c.closeMany(ctx, "close all connections", hub, opts, lit(":closeConnections"))
}

// CloseGroupConnections (POST /groups/{group}/:closeConnections?excluded=&reason=).
func (c *Client) CloseGroupConnections(ctx context.Context, hub, group string, opts *CloseOptions) error {
	return c.closeMany(ctx, "close group connections", hub, opts, lit("groups"), groupSeg(group), lit(":closeConnections"))
}

// CloseUserConnections (POST /users/{user}/:closeConnections?excluded=&reason=).
func (c *Client) CloseUserConnections(ctx context.Context, hub, userID string, opts *CloseOptions) error {
	return c.closeMany(ctx, "close user connections", hub, opts, lit("users"), userSeg(userID), lit(":closeConnections"))
}
