package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/odata"
)

// ConnectionLister lists the connections of a hub as an OData filter sees them.
type ConnectionLister interface {
	HubConnections(ctx context.Context, hub string) ([]odata.Connection, error)
}

// MaxCommands bounds the commands of one :execute.
const MaxCommands = 100

// command is one SignalRCommand of the swagger.
type command struct {
	Type    string          `json:"type"`
	Message json.RawMessage `json:"message"`
	Group   *string         `json:"group"`
	Reason  string          `json:"reason"`

	payload *hub.Payload // SendMessage, parsed before anything is applied
}

// opExecute is POST /:execute?filter=...: the commands of the body, in order, on every
// connection the filter selects (all of the hub without a filter). Everything is
// checked before anything is applied, so a bad command changes nothing.
func opExecute(h *handler, w http.ResponseWriter, r *http.Request, req *request) error {
	if h.opts.Connections == nil {
		return newErr(errNotImplemented, ":execute is not available here")
	}
	filter, err := odata.Parse(queryValue(req, "filter"))
	if err != nil {
		return invalid("filter: %v", err)
	}
	data, binary, err := readBody(w, r, h.opts.MaxBodyBytes)
	if err != nil {
		return err
	}
	if binary {
		return newErr(errUnsupportedMediaType, ":execute takes a JSON array of commands (application/json)")
	}
	cmds, err := parseCommands(data, h.opts.MaxArgumentDepth)
	if err != nil {
		return err
	}
	conns, err := h.opts.Connections.HubConnections(r.Context(), req.hub)
	if err != nil {
		return unavailable(err)
	}
	var ids []string
	for _, c := range conns {
		if filter.Match(c) {
			ids = append(ids, c.ID)
		}
	}
	ctx := r.Context()
	closed := make(map[string]bool)
	for _, cmd := range cmds {
		for _, id := range ids {
			if closed[id] {
				continue
			}
			if err := h.apply(ctx, req.hub, id, &cmd); err != nil {
				return unavailable(err)
			}
			if cmd.Type == "CloseConnection" {
				closed[id] = true
			}
		}
	}
	return nil
}

func (h *handler) apply(ctx context.Context, hubName, id string, cmd *command) error {
	hubs := h.opts.Hubs
	switch cmd.Type {
	case "SendMessage":
		return hubs.SendConnection(ctx, hubName, id, cmd.payload)
	case "JoinGroup":
		// A connection at its group limit is left out, as a closed one would be:
		// the command applies to the others.
		if _, err := hubs.AddToGroup(ctx, hubName, *cmd.Group, id); err != nil && !errors.As(err, new(*hub.GroupLimitError)) {
			return err
		}
		return nil
	case "LeaveGroup":
		return hubs.RemoveFromGroup(ctx, hubName, *cmd.Group, id)
	case "CloseConnection":
		_, err := hubs.CloseConnection(ctx, hubName, id, cmd.Reason)
		return err
	}
	return fmt.Errorf("restapi: unknown command %q", cmd.Type)
}

// commandTypes maps the type names, compared case-insensitively, to their spelling.
var commandTypes = map[string]string{
	"sendmessage": "SendMessage", "joingroup": "JoinGroup", "leavegroup": "LeaveGroup", "closeconnection": "CloseConnection",
}

// parseCommands decodes and checks the body: a JSON array of 1 to MaxCommands
// SignalRCommands.
func parseCommands(data []byte, maxDepth int) ([]command, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var cmds []command
	if err := json.Unmarshal(data, &cmds); err != nil {
		return nil, invalid("the body must be a JSON array of commands: %s", jsonErrText(err))
	}
	if len(cmds) == 0 {
		return nil, invalid("the body must hold at least one command")
	}
	if len(cmds) > MaxCommands {
		return nil, invalid("at most %d commands may be executed at once, got %d", MaxCommands, len(cmds))
	}
	for i := range cmds {
		c := &cmds[i]
		t, ok := commandTypes[strings.ToLower(c.Type)]
		if !ok {
			return nil, invalid("command %d: type %q is not SendMessage, JoinGroup, LeaveGroup or CloseConnection", i, truncate(c.Type))
		}
		c.Type = t
		switch t {
		case "SendMessage":
			if len(c.Message) == 0 || string(c.Message) == "null" {
				return nil, invalid("command %d: SendMessage needs a message", i)
			}
			inv, err := parseJSONPayload(c.Message)
			if err != nil {
				return nil, invalid("command %d: %v", i, err)
			}
			if c.payload, err = deliverable(inv, maxDepth); err != nil {
				return nil, invalid("command %d: %v", i, err)
			}
		case "JoinGroup", "LeaveGroup":
			if c.Group == nil {
				return nil, invalid("command %d: %s needs a group", i, t)
			}
			if err := checkGroup(*c.Group); err != nil {
				return nil, invalid("command %d: %v", i, err)
			}
		}
	}
	return cmds, nil
}

// IsExecute reports whether r is POST /api[/v1]/hubs/{hub}/:execute. In a cluster it
// runs on every node, each on the connections it holds.
func IsExecute(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	segs := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	if len(segs) > 0 && strings.EqualFold(segs[0], "api") {
		segs = segs[1:]
	}
	if len(segs) > 0 && strings.EqualFold(segs[0], "v1") {
		segs = segs[1:]
	}
	return len(segs) == 3 && strings.EqualFold(segs[0], "hubs") && strings.EqualFold(segs[2], ":execute")
}
