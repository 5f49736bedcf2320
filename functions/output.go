package functions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/signalbox-io/signalbox/management"
	"strings"
)

// EndpointInfo is one service endpoint as the signalREndpoints input binding lists it and as
// output items name it in "endpoints" to restrict where they are sent.
type EndpointInfo struct {
	// EndpointType is "Primary" or "Secondary".
	EndpointType string `json:"endpointType"`
	// Name is the endpoint's name in Azure:SignalR:Endpoints:{name}; "" for the unnamed one.
	Name string `json:"name"`
	// Endpoint is scheme://host:port without a trailing slash.
	Endpoint string `json:"endpoint"`
	// Online is the last known health of the endpoint.
	Online bool `json:"online"`
}

// Message is one item of the signalR output binding that sends a hub method invocation to
// clients. The recipients are chosen by the first non-empty field of ConnectionID, UserID,
// GroupName; with none of them the message goes to every client of the hub.
type Message struct {
	// Target is the client method name; required.
	Target string `json:"target"`
	// Arguments are the method arguments, each marshalled with encoding/json
	// (json.RawMessage and protocol.Value pass through unchanged).
	Arguments []any `json:"arguments"`
	// UserID sends to every connection of one user.
	UserID string `json:"userId,omitempty"`
	// GroupName sends to every connection in one group.
	GroupName string `json:"groupName,omitempty"`
	// ConnectionID sends to one connection.
	ConnectionID string `json:"connectionId,omitempty"`
	// Endpoints restricts the endpoints the message goes to: nil means all configured
	// endpoints; a list that names none of them (an empty non-nil slice included) sends
	// nothing and is ErrNoEndpoint.
	Endpoints []EndpointInfo `json:"endpoints"`
}

// GroupActionType is the "action" of a GroupAction.
type GroupActionType string

// Group actions, spelled as the extension serialises them.
const (
	GroupAdd       GroupActionType = "add"
	GroupRemove    GroupActionType = "remove"
	GroupRemoveAll GroupActionType = "removeAll"
)

// ParseGroupActionType reads an action as Newtonsoft's StringEnumConverter does: the exact
// name first, then case-insensitively, then the enum's integer value (0 add, 1 remove,
// 2 removeAll).
func ParseGroupActionType(s string) (GroupActionType, error) {
	for _, a := range []GroupActionType{GroupAdd, GroupRemove, GroupRemoveAll} {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	switch strings.TrimSpace(s) {
	case "0":
		return GroupAdd, nil
	case "1":
		return GroupRemove, nil
	case "2":
		return GroupRemoveAll, nil
	}
	return "", unknownAction(s)
}

// UnmarshalJSON accepts the action as a string or as the enum's integer value.
func (a *GroupActionType) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n json.Number
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("functions: group action: %w", err)
		}
		s = n.String()
	}
	v, err := ParseGroupActionType(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// GroupAction is one item of the signalR output binding that changes group membership.
// With a ConnectionID it adds or removes that connection (RemoveAll with a ConnectionID is
// ignored, as in the extension); otherwise with a UserID it adds, removes or removes the user
// from all groups.
type GroupAction struct {
	Action       GroupActionType `json:"action"`
	UserID       string          `json:"userId,omitempty"`
	ConnectionID string          `json:"connectionId,omitempty"`
	GroupName    string          `json:"groupName,omitempty"`
	Endpoints    []EndpointInfo  `json:"endpoints"`
}

// Validation errors of output items, worded as the extension words them.
var (
	// ErrUnknownItem: a JSON object that is neither a message nor a group action.
	ErrUnknownItem = errors.New("Unable to convert JObject to valid output binding type, check parameters.")
	// ErrUnsupportedItem: an item of a Go type the binding does not know.
	ErrUnsupportedItem = errors.New("Unsupport Binding Type.")
	// ErrNilItem: a null item.
	ErrNilItem = errors.New("Value cannot be null.")
	// ErrNoGroupName: add/remove without a group name.
	ErrNoGroupName = errors.New("groupName cannot be null or empty")
	// ErrNoTarget: a message without a target.
	ErrNoTarget = errors.New("target cannot be null or empty")
	// ErrNoConnectionOrUser: a group action naming neither a connection nor a user.
	ErrNoConnectionOrUser = errors.New("ConnectionId and UserId cannot be null or empty together")
	// ErrUnknownGroupAction: an action other than add, remove and removeAll (the error's
	// text names it).
	ErrUnknownGroupAction = errors.New("unknown group action (want add, remove or removeAll)")
	// ErrNoEndpoint: an item whose "endpoints" names no configured endpoint (an empty list
	// included); it is sent nowhere. The extension only logs this; here it fails, so that a
	// message does not vanish unnoticed.
	ErrNoEndpoint = management.ErrNoEndpoint
)

type actionError struct{ action string }

func (e *actionError) Error() string {
	return fmt.Sprintf("unknown group action %q (want add, remove or removeAll)", e.action)
}

func (e *actionError) Is(target error) bool { return target == ErrUnknownGroupAction }

func unknownAction(a string) error { return &actionError{a} }

// Validate reports the error the extension would raise before sending m.
func (m *Message) Validate() error {
	if m.Target == "" {
		return ErrNoTarget
	}
	return nil
}

// Validate reports the error the extension would raise before applying a.
func (a *GroupAction) Validate() error {
	switch a.Action {
	case GroupAdd, GroupRemove, GroupRemoveAll:
	default:
		return unknownAction(string(a.Action))
	}
	if a.ConnectionID == "" && a.UserID == "" {
		return ErrNoConnectionOrUser
	}
	if a.Action != GroupRemoveAll && a.GroupName == "" {
		return ErrNoGroupName
	}
	return nil
}

// rawItem holds the fields of either item type; pointers tell "absent or null" from "".
type rawItem struct {
	Target       *string           `json:"target"`
	Arguments    []json.RawMessage `json:"arguments"`
	Action       *json.RawMessage  `json:"action"`
	UserID       *string           `json:"userId"`
	GroupName    *string           `json:"groupName"`
	ConnectionID *string           `json:"connectionId"`
	Endpoints    []EndpointInfo    `json:"endpoints"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ParseOutput reads the JSON value of a signalR output binding — one object or an array of
// objects — into Message and GroupAction items, discriminated as the extension does: an
// object with "target" is a Message (even if it also has "action"), else an object with a
// valid "action" is a GroupAction, else ErrUnknownItem. Property names match
// case-insensitively.
func ParseOutput(data []byte) ([]any, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return nil, ErrNilItem
	}
	var raws []json.RawMessage
	if data[0] == '[' {
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, fmt.Errorf("functions: output binding value: %w", err)
		}
	} else {
		raws = []json.RawMessage{data}
	}
	items := make([]any, 0, len(raws))
	for i, raw := range raws {
		it, err := ParseOutputItem(raw)
		if err != nil {
			if len(raws) > 1 || data[0] == '[' {
				return nil, fmt.Errorf("functions: output item %d: %w", i, err)
			}
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// ParseOutputItem reads one JSON object as a *Message or a *GroupAction (see ParseOutput).
func ParseOutputItem(raw []byte) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, ErrNilItem
	}
	if raw[0] != '{' {
		return nil, ErrUnsupportedItem
	}
	var r rawItem
	if err := json.Unmarshal(raw, &r); err != nil {
		// A wrongly typed property makes the object unreadable as either type.
		return nil, fmt.Errorf("%w (%v)", ErrUnknownItem, err)
	}
	if r.Target != nil {
		m := &Message{
			Target:       *r.Target,
			UserID:       deref(r.UserID),
			GroupName:    deref(r.GroupName),
			ConnectionID: deref(r.ConnectionID),
			Endpoints:    r.Endpoints,
		}
		if r.Arguments != nil {
			m.Arguments = make([]any, len(r.Arguments))
			for i, a := range r.Arguments {
				m.Arguments[i] = a
			}
		}
		return m, nil
	}
	if r.Action != nil {
		var act GroupActionType
		if err := act.UnmarshalJSON(*r.Action); err == nil {
			return &GroupAction{
				Action:       act,
				UserID:       deref(r.UserID),
				ConnectionID: deref(r.ConnectionID),
				GroupName:    deref(r.GroupName),
				Endpoints:    r.Endpoints,
			}, nil
		}
	}
	return nil, ErrUnknownItem
}

// normalizeItem turns any accepted Go form of an output item into *Message or *GroupAction.
func normalizeItem(item any) (any, error) {
	switch v := item.(type) {
	case nil:
		return nil, ErrNilItem
	case Message:
		return &v, nil
	case *Message:
		if v == nil {
			return nil, ErrNilItem
		}
		return v, nil
	case GroupAction:
		return &v, nil
	case *GroupAction:
		if v == nil {
			return nil, ErrNilItem
		}
		return v, nil
	case json.RawMessage:
		return ParseOutputItem(v)
	case []byte:
		return ParseOutputItem(v)
	case string:
		return ParseOutputItem([]byte(v))
	case map[string]any:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("functions: output item: %w", err)
		}
		return ParseOutputItem(b)
	}
	return nil, ErrUnsupportedItem
}

// expandItems flattens the arguments of Output: a JSON array (as json.RawMessage, []byte or
// string) or a []any/[]Message/[]GroupAction contributes each of its elements.
func expandItems(items []any) ([]any, error) {
	out := make([]any, 0, len(items))
	for _, it := range items {
		switch v := it.(type) {
		case json.RawMessage:
			if t := bytes.TrimSpace(v); len(t) > 0 && t[0] == '[' {
				parsed, err := ParseOutput(t)
				if err != nil {
					return nil, err
				}
				out = append(out, parsed...)
				continue
			}
		case []byte:
			if t := bytes.TrimSpace(v); len(t) > 0 && t[0] == '[' {
				parsed, err := ParseOutput(t)
				if err != nil {
					return nil, err
				}
				out = append(out, parsed...)
				continue
			}
		case string:
			if t := strings.TrimSpace(v); len(t) > 0 && t[0] == '[' {
				parsed, err := ParseOutput([]byte(t))
				if err != nil {
					return nil, err
				}
				out = append(out, parsed...)
				continue
			}
		case []any:
			out = append(out, v...)
			continue
		case []Message:
			for i := range v {
				out = append(out, &v[i])
			}
			continue
		case []GroupAction:
			for i := range v {
				out = append(out, &v[i])
			}
			continue
		}
		out = append(out, it)
	}
	for i, it := range out {
		n, err := normalizeItem(it)
		if err != nil {
			return nil, fmt.Errorf("functions: output item %d: %w", i, err)
		}
		out[i] = n
	}
	return out, nil
}
