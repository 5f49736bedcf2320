// Package customhandler holds the payloads the Azure Functions host exchanges with a custom
// handler (FUNCTIONS_WORKER_RUNTIME=Custom), so that a Go function hosted by the Functions host
// can use the SignalR bindings through the host's extension:
//
//	function.json binding            read/write here
//	signalRConnectionInfo (in)       InvokeRequest.ConnectionInfo -> functions.ConnectionInfo
//	signalRNegotiation (in)          InvokeRequest.Negotiation    -> functions.Negotiation
//	signalREndpoints (in)            InvokeRequest.Endpoints      -> []functions.EndpointInfo
//	signalRTrigger (trigger)         InvokeRequest.InvocationContext -> functions.InvocationContext
//	signalR (out)                    InvokeResponse.AddSignalR(name, Message/GroupAction...)
//	httpTrigger (in) / http (out)    InvokeRequest.HTTPRequest, InvokeResponse.SetHTTP
//
// The host POSTs {"Data":{binding:value},"Metadata":{…}} to /<FunctionName> on
// FUNCTIONS_CUSTOMHANDLER_PORT and expects {"Outputs":{binding:value},"Logs":[…],
// "ReturnValue":…}. Binding values of non-.NET workers often arrive as JSON text inside a JSON
// string; every reader here accepts both forms. For a signalRTrigger invoked by a client's
// invoke (not send), InvokeResponse.ReturnValue is the result the client receives (the
// function.json then declares a "$return" output).
package customhandler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/signalbox-io/signalbox/functions"
)

// InvokeRequest is the body the host sends for one invocation.
type InvokeRequest struct {
	// Data holds trigger and input binding values by binding name.
	Data map[string]json.RawMessage `json:"Data"`
	// Metadata holds trigger metadata (e.g. "sys": {"MethodName","UtcNow","RandGuid"}).
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// InvokeResponse is the body a handler returns.
type InvokeResponse struct {
	// Outputs holds output binding values by binding name.
	Outputs map[string]any `json:"Outputs"`
	// Logs go to the invocation's logs (Application Insights).
	Logs []string `json:"Logs"`
	// ReturnValue is used by an output binding named $return.
	ReturnValue any `json:"ReturnValue"`
}

// HTTPRequest is the value of an httpTrigger binding.
type HTTPRequest struct {
	URL     string              `json:"Url"`
	Method  string              `json:"Method"`
	Query   map[string]string   `json:"-"`
	Headers map[string][]string `json:"Headers"`
	Params  map[string]string   `json:"Params"`
	// Body is the request body as text (the host sends it as a JSON string; a JSON value is
	// kept as its text).
	Body string `json:"-"`
	// Identities are the host's ClaimsIdentity list, kept raw.
	Identities json.RawMessage `json:"Identities,omitempty"`
}

// Header returns the first value of a request header, matched case-insensitively.
func (r *HTTPRequest) Header(name string) string {
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// UnmarshalJSON reads the host's HTTP request shape: Query may be an object or a string
// holding JSON, Body a string or any JSON value, header values strings or lists.
func (r *HTTPRequest) UnmarshalJSON(b []byte) error {
	var w struct {
		URL        string                     `json:"Url"`
		Method     string                     `json:"Method"`
		Query      json.RawMessage            `json:"Query"`
		Headers    map[string]json.RawMessage `json:"Headers"`
		Params     map[string]string          `json:"Params"`
		Body       json.RawMessage            `json:"Body"`
		Identities json.RawMessage            `json:"Identities"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("customhandler: http request: %w", err)
	}
	*r = HTTPRequest{URL: w.URL, Method: w.Method, Params: w.Params, Identities: w.Identities}
	if err := unwrapJSON(w.Query, &r.Query); err != nil {
		return fmt.Errorf("customhandler: http request Query: %w", err)
	}
	if w.Headers != nil {
		r.Headers = make(map[string][]string, len(w.Headers))
		for k, raw := range w.Headers {
			var list []string
			if err := json.Unmarshal(raw, &list); err != nil {
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return fmt.Errorf("customhandler: http request header %q: want a string or a list of strings", k)
				}
				list = []string{s}
			}
			r.Headers[k] = list
		}
	}
	if len(w.Body) > 0 && !bytes.Equal(w.Body, []byte("null")) {
		var s string
		if json.Unmarshal(w.Body, &s) == nil {
			r.Body = s
		} else {
			r.Body = string(w.Body)
		}
	}
	return nil
}

// MarshalJSON writes the host's shape (Query as an object, Body as a string).
func (r HTTPRequest) MarshalJSON() ([]byte, error) {
	type plain HTTPRequest // without the methods
	return json.Marshal(struct {
		plain
		Query map[string]string `json:"Query"`
		Body  string            `json:"Body"`
	}{plain(r), r.Query, r.Body})
}

// HTTPResponse is the value of an http output binding.
type HTTPResponse struct {
	StatusCode int               `json:"statusCode"`
	Body       string            `json:"body,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// unwrapJSON decodes raw into dst; raw may also be a JSON string holding the JSON text.
// Absent or null leaves dst unchanged.
func unwrapJSON(raw json.RawMessage, dst any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			return nil
		}
		raw = json.RawMessage(s)
	}
	return json.Unmarshal(raw, dst)
}

// ErrNoBinding is returned when the request has no value for a binding name.
var ErrNoBinding = errors.New("customhandler: no such binding in Data")

func (r *InvokeRequest) binding(name string, dst any) error {
	raw, ok := r.Data[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoBinding, name)
	}
	if err := unwrapJSON(raw, dst); err != nil {
		return fmt.Errorf("customhandler: binding %q: %w", name, err)
	}
	return nil
}

// Bind decodes the value of any binding into dst.
func (r *InvokeRequest) Bind(name string, dst any) error { return r.binding(name, dst) }

// ConnectionInfo reads a signalRConnectionInfo input binding.
func (r *InvokeRequest) ConnectionInfo(name string) (functions.ConnectionInfo, error) {
	var ci functions.ConnectionInfo
	err := r.binding(name, &ci)
	return ci, err
}

// Negotiation reads a signalRNegotiation input binding.
func (r *InvokeRequest) Negotiation(name string) (functions.Negotiation, error) {
	var n functions.Negotiation
	err := r.binding(name, &n)
	return n, err
}

// Endpoints reads a signalREndpoints input binding.
func (r *InvokeRequest) Endpoints(name string) ([]functions.EndpointInfo, error) {
	var eps []functions.EndpointInfo
	err := r.binding(name, &eps)
	return eps, err
}

// InvocationContext reads a signalRTrigger binding.
func (r *InvokeRequest) InvocationContext(name string) (*functions.InvocationContext, error) {
	var ic functions.InvocationContext
	if err := r.binding(name, &ic); err != nil {
		return nil, err
	}
	return &ic, nil
}

// HTTPRequest reads an httpTrigger binding.
func (r *InvokeRequest) HTTPRequest(name string) (*HTTPRequest, error) {
	var h HTTPRequest
	if err := r.binding(name, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// AddSignalR appends items to the signalR output binding name. Items are validated and
// normalised as functions.ParseOutput and Service.Output accept them (Message, GroupAction,
// pointers to them, JSON objects); the binding's value is always a list.
func (r *InvokeResponse) AddSignalR(name string, items ...any) error {
	norm := make([]any, 0, len(items))
	for i, it := range items {
		var b []byte
		var err error
		switch v := it.(type) {
		case json.RawMessage:
			b = v
		case []byte: // JSON text, as Service.Output takes it (json.Marshal would make it base64)
			b = v
		case string:
			b = []byte(v)
		default:
			b, err = json.Marshal(it)
		}
		if err != nil {
			return fmt.Errorf("customhandler: signalR item %d: %w", i, err)
		}
		parsed, err := functions.ParseOutput(b)
		if err != nil {
			return fmt.Errorf("customhandler: signalR item %d: %w", i, err)
		}
		for _, p := range parsed {
			switch v := p.(type) {
			case *functions.Message:
				if err := v.Validate(); err != nil {
					return fmt.Errorf("customhandler: signalR item %d: %w", i, err)
				}
			case *functions.GroupAction:
				if err := v.Validate(); err != nil {
					return fmt.Errorf("customhandler: signalR item %d: %w", i, err)
				}
			}
			norm = append(norm, p)
		}
	}
	if r.Outputs == nil {
		r.Outputs = map[string]any{}
	}
	list, _ := r.Outputs[name].([]any)
	r.Outputs[name] = append(list, norm...)
	return nil
}

// SetHTTP sets an http output binding.
func (r *InvokeResponse) SetHTTP(name string, res HTTPResponse) {
	if r.Outputs == nil {
		r.Outputs = map[string]any{}
	}
	r.Outputs[name] = res
}

// Log appends a line to the invocation's logs.
func (r *InvokeResponse) Log(format string, args ...any) {
	r.Logs = append(r.Logs, fmt.Sprintf(format, args...))
}

// MaxRequestSize bounds InvokeRequest bodies read by Handler.
const MaxRequestSize = 32 << 20

// Func handles one invocation.
type Func func(r *http.Request, req *InvokeRequest) (*InvokeResponse, error)

// Handler adapts fn to the host's protocol: it decodes the InvokeRequest, calls fn and writes
// the InvokeResponse as JSON. A decoding failure answers 400, an error from fn 500 with the
// error in Logs (the host then fails the invocation).
func Handler(fn Func) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestSize))
		if err != nil {
			http.Error(w, "cannot read request", http.StatusBadRequest)
			return
		}
		var req InvokeRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, "invalid invoke request: "+err.Error(), http.StatusBadRequest)
			return
		}
		res, err := fn(r, &req)
		status := http.StatusOK
		if err != nil {
			status = http.StatusInternalServerError
			if res == nil {
				res = &InvokeResponse{}
			}
			res.Logs = append(res.Logs, err.Error())
		}
		if res == nil {
			res = &InvokeResponse{}
		}
		if res.Outputs == nil {
			res.Outputs = map[string]any{}
		}
		if res.Logs == nil {
			res.Logs = []string{}
		}
		out, err := json.Marshal(res)
		if err != nil {
			http.Error(w, "cannot encode response: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(out)
	})
}
