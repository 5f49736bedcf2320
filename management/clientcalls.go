package management

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/signalbox-io/signalbox/connection"
)

// clientCallsAPIVersion is the REST version that added :invoke and the stream operations.
const clientCallsAPIVersion = "2024-12-01"

// executeAPIVersion is the REST version that added :execute.
const executeAPIVersion = "2023-07-01"

// Error codes of the client-result and stream operations (Signalbox's; Azure answers
// with an ErrorDetail whose code it does not document).
const (
	CodeStreamNotExisted    = "Error.Stream.NotExisted"
	CodeInvocationFailed    = "Error.Invocation.Failed"
	CodeInvocationTimeout   = "Error.Invocation.Timeout"
	CodeInvocationThrottled = "Error.Invocation.Throttled"
)

// ConnectionOptions configures the operations on one connection of one endpoint.
type ConnectionOptions struct {
	// Endpoints restricts where the connection is looked for (nil = every endpoint); the
	// first endpoint that has it answers.
	Endpoints []connection.Endpoint
}

// InvokeConnection calls target(args...) on one connection and returns the result its
// handler produced, as JSON (POST /connections/{id}/:invoke). A handler that failed, a
// timeout, a connection that does not exist or left, and too many pending invocations
// are *ResponseError with ErrorCode CodeInvocationFailed, CodeInvocationTimeout,
// CodeConnectionNotExistedError and CodeInvocationThrottled.
func (c *Client) InvokeConnection(ctx context.Context, hub, connectionID, target string, args any, opts *ConnectionOptions) (json.RawMessage, error) {
	path, err := hubPath(hub, lit("connections"), connSeg(connectionID), lit(":invoke"))
	if err != nil {
		return nil, err
	}
	body, err := messageBody(target, args)
	if err != nil {
		return nil, err
	}
	data, err := c.onConnection(ctx, "invoke", call{method: http.MethodPost, path: path, apiVersion: clientCallsAPIVersion, body: body, message: true}, opts)
	if err != nil {
		return nil, err
	}
	var res struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("management: invoke: invalid response: %w", err)
	}
	if res.Result == nil {
		res.Result = json.RawMessage("null")
	}
	return res.Result, nil
}

// StreamItemOptions configures SendStreamItem.
type StreamItemOptions struct {
	// Completed ends the stream after this item.
	Completed bool
	Endpoints []connection.Endpoint
}

// SendStreamItem sends item (encoded with encoding/json; a json.RawMessage is sent as
// is) on the server-to-client stream streamID of a connection: the invocation id of
// the client's stream invocation, which the trigger receives
// (POST /connections/{id}/streams/{streamId}/:send).
func (c *Client) SendStreamItem(ctx context.Context, hub, connectionID, streamID string, item any, opts *StreamItemOptions) error {
	if opts == nil {
		opts = &StreamItemOptions{}
	}
	path, err := hubPath(hub, lit("connections"), connSeg(connectionID), lit("streams"), part{"stream id", streamID}, lit(":send"))
	if err != nil {
		return err
	}
	body, ok := item.(json.RawMessage)
	if !ok {
		if body, err = json.Marshal(item); err != nil {
			return fmt.Errorf("management: encoding the stream item: %w", err)
		}
	}
	q := url.Values{}
	if opts.Completed {
		q.Set("completed", "true")
	}
	_, err = c.onConnection(ctx, "send stream item", call{method: http.MethodPost, path: path, apiVersion: clientCallsAPIVersion, body: body, query: q, message: true},
		&ConnectionOptions{Endpoints: opts.Endpoints})
	return err
}

// CompleteStreamOptions configures CompleteStream.
type CompleteStreamOptions struct {
	// Error, when not empty, ends the stream with this error.
	Error     string
	Endpoints []connection.Endpoint
}

// CompleteStream ends the stream streamID of a connection
// (POST /connections/{id}/streams/{streamId}/:complete?reason=).
func (c *Client) CompleteStream(ctx context.Context, hub, connectionID, streamID string, opts *CompleteStreamOptions) error {
	if opts == nil {
		opts = &CompleteStreamOptions{}
	}
	path, err := hubPath(hub, lit("connections"), connSeg(connectionID), lit("streams"), part{"stream id", streamID}, lit(":complete"))
	if err != nil {
		return err
	}
	q := url.Values{}
	if opts.Error != "" {
		q.Set("reason", opts.Error)
	}
	_, err = c.onConnection(ctx, "complete stream", call{method: http.MethodPost, path: path, apiVersion: clientCallsAPIVersion, query: q, message: true},
		&ConnectionOptions{Endpoints: opts.Endpoints})
	return err
}

// onConnection runs cl on the endpoints in turn until one has the connection (a 404
// Error.Connection.NotExisted sends it on to the next) and returns that one's body.
func (c *Client) onConnection(ctx context.Context, op string, cl call, opts *ConnectionOptions) ([]byte, error) {
	var filter []connection.Endpoint
	if opts != nil {
		filter = opts.Endpoints
	}
	targets := c.targets(filter)
	if len(targets) == 0 {
		return nil, fmt.Errorf("management: %s: %w", op, ErrNoEndpoint)
	}
	var last error
	for _, es := range targets {
		data, _, err := c.do(ctx, es, cl)
		if err == nil {
			return data, nil
		}
		last = err
		var re *ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound || re.ErrorCode != CodeConnectionNotExistedError {
			break
		}
	}
	return nil, fmt.Errorf("management: %s: %w", op, last)
}

// CommandType names a SignalRCommand of Execute.
type CommandType string

// The commands of Execute.
const (
	CommandSendMessage     CommandType = "SendMessage"
	CommandJoinGroup       CommandType = "JoinGroup"
	CommandLeaveGroup      CommandType = "LeaveGroup"
	CommandCloseConnection CommandType = "CloseConnection"
)

// Command is one SignalRCommand: SendMessage uses Target and Arguments, JoinGroup and
// LeaveGroup Group, CloseConnection Reason.
type Command struct {
	Type      CommandType
	Target    string
	Arguments any // as the args of SendToAll
	Group     string
	Reason    string
}

// ExecuteOptions configures Execute.
type ExecuteOptions struct {
	Endpoints []connection.Endpoint // as in SendOptions
}

// Execute runs commands, in order, on every connection of hub that filter selects
// (POST /:execute?filter=). The filter is OData as Azure documents it: userId,
// connectionId, '<group>' in groups, eq, ne, and, or, not, startswith and parentheses;
// "" selects every connection.
func (c *Client) Execute(ctx context.Context, hub, filter string, commands []Command, opts *ExecuteOptions) error {
	if opts == nil {
		opts = &ExecuteOptions{}
	}
	if len(commands) == 0 {
		return errors.New("management: execute: no commands")
	}
	path, err := hubPath(hub, lit(":execute"))
	if err != nil {
		return err
	}
	type wire struct {
		Type    CommandType      `json:"type"`
		Message *json.RawMessage `json:"message,omitempty"`
		Group   string           `json:"group,omitempty"`
		Reason  string           `json:"reason,omitempty"`
	}
	out := make([]wire, len(commands))
	for i, cmd := range commands {
		w := wire{Type: cmd.Type, Group: cmd.Group, Reason: cmd.Reason}
		switch cmd.Type {
		case CommandSendMessage:
			m, err := messageBody(cmd.Target, cmd.Arguments)
			if err != nil {
				return fmt.Errorf("management: execute: command %d: %w", i, err)
			}
			raw := json.RawMessage(m)
			w.Message = &raw
		case CommandJoinGroup, CommandLeaveGroup:
			if cmd.Group == "" {
				return fmt.Errorf("management: execute: command %d: %s needs a group", i, cmd.Type)
			}
		case CommandCloseConnection:
		default:
			return fmt.Errorf("management: execute: command %d: unknown type %q", i, cmd.Type)
		}
		out[i] = w
	}
	body, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("management: execute: %w", err)
	}
	q := url.Values{}
	if filter != "" {
		q.Set("filter", filter)
	}
	return c.exec(ctx, "execute", call{method: http.MethodPost, path: path, apiVersion: executeAPIVersion, body: body, query: q, message: true}, opts.Endpoints)
}
