package functions

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/signalbox-io/signalbox/protocol"
)

// Trigger categories and connection events, as the service sends them in X-ASRS-Category and
// X-ASRS-Event.
const (
	CategoryConnections = "connections"
	CategoryMessages    = "messages"
	EventConnected      = "connected"
	EventDisconnected   = "disconnected"
)

// Headers the service puts on upstream requests.
const (
	HeaderConnectionID = "X-ASRS-Connection-Id"
	HeaderHub          = "X-ASRS-Hub"
	HeaderCategory     = "X-ASRS-Category"
	HeaderEvent        = "X-ASRS-Event"
	HeaderSignature    = "X-ASRS-Signature"
	HeaderUserID       = "X-ASRS-User-Id"
	HeaderUserClaims   = "X-ASRS-User-Claims"
	HeaderClientQuery  = "X-ASRS-Client-Query"
)

// InvocationContext is the value of the signalRTrigger binding: one connection event or one
// client invocation. Its JSON form uses the PascalCase names the extension gives non-.NET
// workers (Arguments, Error, Category, Event, Hub, ConnectionId, UserId, Headers, Query,
// Claims).
type InvocationContext struct {
	// Arguments are the invocation's arguments (messages only), in the protocol of the request;
	// Value.Decode converts one into a Go value.
	Arguments []protocol.Value
	// Error is the close reason of a disconnected event ("" when the connection closed cleanly).
	Error    string
	Category string
	Event    string
	Hub      string
	// ConnectionID is the caller's connection (X-ASRS-Connection-Id).
	ConnectionID string
	// UserID is the caller's user id (X-ASRS-User-Id), "" for anonymous connections.
	UserID string
	// Headers are all request headers (content headers excluded), multiple values joined with
	// ","; keys are canonical (textproto) — use Header for a case-insensitive lookup.
	Headers map[string]string
	// Query is the client's negotiate/connect query string (X-ASRS-Client-Query), duplicate
	// keys joined with ","; nil when the service sent none.
	Query map[string]string
	// Claims are the caller's token claims (X-ASRS-User-Claims), the first value per type;
	// nil when the service sent none.
	Claims map[string]string

	// InvocationID is the hub-protocol invocation id; "" for a client send (no result wanted)
	// and for connection events. Not part of the JSON form.
	InvocationID string `json:"-"`
	// params maps the handler's parameter names (case-insensitively) to argument indexes.
	params map[string]int
}

// Header returns one request header, matching the name case-insensitively.
func (ic *InvocationContext) Header(name string) string {
	if v, ok := ic.Headers[http.CanonicalHeaderKey(name)]; ok {
		return v
	}
	for k, v := range ic.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Parameter returns the argument bound to a name given with ParameterNames at registration
// (case-insensitive).
func (ic *InvocationContext) Parameter(name string) (protocol.Value, bool) {
	i, ok := ic.params[strings.ToLower(name)]
	if !ok || i >= len(ic.Arguments) {
		return protocol.Value{}, false
	}
	return ic.Arguments[i], true
}

// invocationContextJSON is the wire form; Arguments are raw JSON values.
type invocationContextJSON struct {
	Arguments    []json.RawMessage `json:"Arguments"`
	Error        string            `json:"Error"`
	Category     string            `json:"Category"`
	Event        string            `json:"Event"`
	Hub          string            `json:"Hub"`
	ConnectionID string            `json:"ConnectionId"`
	UserID       string            `json:"UserId"`
	Headers      map[string]string `json:"Headers"`
	Query        map[string]string `json:"Query"`
	Claims       map[string]string `json:"Claims"`
}

// MarshalJSON writes the PascalCase form the extension hands to non-.NET workers; MessagePack
// arguments are converted to JSON.
func (ic InvocationContext) MarshalJSON() ([]byte, error) {
	w := invocationContextJSON{
		Error: ic.Error, Category: ic.Category, Event: ic.Event, Hub: ic.Hub,
		ConnectionID: ic.ConnectionID, UserID: ic.UserID,
		Headers: ic.Headers, Query: ic.Query, Claims: ic.Claims,
	}
	if ic.Arguments != nil {
		w.Arguments = make([]json.RawMessage, len(ic.Arguments))
		for i, a := range ic.Arguments {
			if a.IsZero() {
				w.Arguments[i] = json.RawMessage("null")
				continue
			}
			b, err := a.JSON()
			if err != nil {
				return nil, fmt.Errorf("functions: argument %d: %w", i, err)
			}
			w.Arguments[i] = b
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the PascalCase form (names match case-insensitively). Header-like maps
// whose values arrive as arrays (the isolated worker's StringValues) are joined with ",".
func (ic *InvocationContext) UnmarshalJSON(b []byte) error {
	var w struct {
		Arguments    []json.RawMessage          `json:"Arguments"`
		Error        *string                    `json:"Error"`
		Category     string                     `json:"Category"`
		Event        string                     `json:"Event"`
		Hub          string                     `json:"Hub"`
		ConnectionID string                     `json:"ConnectionId"`
		UserID       *string                    `json:"UserId"`
		Headers      map[string]json.RawMessage `json:"Headers"`
		Query        map[string]json.RawMessage `json:"Query"`
		Claims       map[string]json.RawMessage `json:"Claims"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("functions: invocation context: %w", err)
	}
	*ic = InvocationContext{
		Category: strings.ToLower(w.Category), Event: w.Event, Hub: w.Hub,
		ConnectionID: w.ConnectionID,
	}
	if w.Error != nil {
		ic.Error = *w.Error
	}
	if w.UserID != nil {
		ic.UserID = *w.UserID
	}
	if w.Arguments != nil {
		ic.Arguments = make([]protocol.Value, len(w.Arguments))
		for i, a := range w.Arguments {
			ic.Arguments[i] = protocol.JSONValue(a)
		}
	}
	var err error
	if ic.Headers, err = stringMap(w.Headers); err != nil {
		return fmt.Errorf("functions: invocation context Headers: %w", err)
	}
	if ic.Query, err = stringMap(w.Query); err != nil {
		return fmt.Errorf("functions: invocation context Query: %w", err)
	}
	if ic.Claims, err = stringMap(w.Claims); err != nil {
		return fmt.Errorf("functions: invocation context Claims: %w", err)
	}
	return nil
}

func stringMap(m map[string]json.RawMessage) (map[string]string, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, raw := range m {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			out[k] = s
			continue
		}
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("key %q: want a string or a list of strings", k)
		}
		out[k] = strings.Join(list, ",")
	}
	return out, nil
}

// requestHeaders copies all non-content headers, joining multiple values with ",".
func requestHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(k) >= len("content-") && strings.EqualFold(k[:len("content-")], "content-") {
			continue
		}
		out[k] = strings.Join(v, ",")
	}
	return out
}

// parseClientQuery reads X-ASRS-Client-Query ("?a=1&b=2"); duplicate keys are joined with ",".
func parseClientQuery(h http.Header) map[string]string {
	vals, ok := h[canonClientQuery]
	if !ok || len(vals) == 0 {
		return nil
	}
	q, _ := url.ParseQuery(strings.TrimPrefix(vals[0], "?")) // best effort, as the extension
	out := make(map[string]string, len(q))
	for k, v := range q {
		out[k] = strings.Join(v, ",")
	}
	return out
}

// parseClaims reads X-ASRS-User-Claims ("type1: v1, type2: v2"): pairs split on ",", each on
// ": "; malformed pairs are dropped, values trimmed, the first value per type wins.
func parseClaims(h http.Header) map[string]string {
	vals, ok := h[canonUserClaims]
	if !ok || len(vals) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, pair := range strings.Split(strings.Join(vals, ","), ",") {
		parts := strings.Split(pair, ": ")
		if len(parts) != 2 {
			continue
		}
		k, v := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
		if _, seen := out[k]; !seen {
			out[k] = v
		}
	}
	return out
}
