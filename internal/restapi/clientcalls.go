package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/signalbox-io/signalbox/protocol"
)

// ClientCalls are the operations that need one connection's answer or feed its
// streams (REST 2024-12-01): client results and server-to-client streams. They live
// where the connection's transport is.
type ClientCalls interface {
	// Invoke sends inv to the connection with an invocation id of its own choosing
	// and returns the client's Completion (which may carry an error).
	Invoke(ctx context.Context, hub, connID string, inv *protocol.Invocation) (*protocol.Completion, error)
	// StreamItem sends one item of stream streamID (the id of the client's stream
	// invocation); complete ends the stream after it.
	StreamItem(ctx context.Context, hub, connID, streamID string, item protocol.Value, complete bool) error
	// CompleteStream ends stream streamID, with errText as its error when not empty.
	CompleteStream(ctx context.Context, hub, connID, streamID, errText string) error
}

// Errors a ClientCalls implementation returns; anything else is a 503 like a Hubs
// failure.
var (
	ErrNoConnection       = errors.New("no such connection")
	ErrNoStream           = errors.New("no such stream")
	ErrInvocationTimeout  = errors.New("the client did not answer in time")
	ErrTooManyInvocations = errors.New("too many invocations are waiting for an answer")
)

// callError maps a ClientCalls error to the response.
func callError(err error) error {
	switch {
	case errors.Is(err, ErrNoConnection):
		return &apiError{kind: errConnectionNotExistedError, msg: "The connection does not exist or closed before it answered.", err: err}
	case errors.Is(err, ErrNoStream):
		return &apiError{kind: errStreamNotExisted, msg: "The stream does not exist: the client did not start it, cancelled it, or it was completed.", err: err}
	case errors.Is(err, ErrInvocationTimeout):
		return &apiError{kind: errInvocationTimeout, msg: "The client did not answer the invocation in time.", err: err}
	case errors.Is(err, ErrTooManyInvocations):
		return &apiError{kind: errTooManyInvocations, msg: "Too many invocations are waiting for client results; retry later.", err: err}
	case errors.Is(err, context.Canceled):
		return &apiError{kind: errInvalid, msg: "The request was cancelled.", err: err}
	}
	return unavailable(err)
}

func (h *handler) calls() (ClientCalls, error) {
	if h.opts.Calls == nil {
		return nil, newErr(errNotImplemented, "client results and streams are not available here")
	}
	return h.opts.Calls, nil
}

// opInvoke is POST .../connections/{id}/:invoke: the body's PayloadMessage becomes an
// invocation the client answers; 200 {"result": ...} with its result.
func opInvoke(h *handler, w http.ResponseWriter, r *http.Request, req *request) error {
	calls, err := h.calls()
	if err != nil {
		return err
	}
	data, binary, err := readBody(w, r, h.opts.MaxBodyBytes)
	if err != nil {
		return err
	}
	if binary {
		// The pre-framed form carries no invocation id the service could match.
		return newErr(errUnsupportedMediaType, ":invoke takes a JSON PayloadMessage (application/json)")
	}
	inv, err := parseJSONPayload(data)
	if err != nil {
		return err
	}
	if err := checkArguments(inv.Arguments, h.opts.MaxArgumentDepth); err != nil {
		return err
	}
	c, err := calls.Invoke(r.Context(), req.hub, req.conn, inv)
	if err != nil {
		return callError(err)
	}
	if c.Error != "" {
		return &apiError{kind: errInvocationFailed, msg: c.Error}
	}
	result := []byte("null")
	if c.HasResult && !c.Result.IsZero() {
		if result, err = c.Result.JSON(); err != nil {
			return &apiError{kind: errInvocationFailed, msg: "The client's result cannot be represented as JSON.", err: err}
		}
	}
	var body bytes.Buffer
	body.WriteString(`{"result":`)
	body.Write(result)
	body.WriteString("}")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body.Bytes())
	return nil
}

// opStreamSend is POST .../connections/{id}/streams/{streamId}/:send[?completed=true]:
// the JSON body is one stream item.
func opStreamSend(h *handler, w http.ResponseWriter, r *http.Request, req *request) error {
	calls, err := h.calls()
	if err != nil {
		return err
	}
	completed := false
	if v := queryValue(req, "completed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalid("completed must be true or false")
		}
		completed = b
	}
	data, binary, err := readBody(w, r, h.opts.MaxBodyBytes)
	if err != nil {
		return err
	}
	if binary {
		return newErr(errUnsupportedMediaType, "a stream item is a JSON value (application/json)")
	}
	data = bytes.TrimPrefix(bytes.TrimSpace(data), []byte("\xef\xbb\xbf"))
	if !json.Valid(data) {
		return invalid("the stream item is not valid JSON")
	}
	if err := calls.StreamItem(r.Context(), req.hub, req.conn, req.stream, protocol.JSONValue(data), completed); err != nil {
		return callError(err)
	}
	return nil
}

// opStreamComplete is POST .../streams/{streamId}/:complete. The swagger names the
// error parameter reason; the Management SDK sends error: both are read.
func opStreamComplete(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	calls, err := h.calls()
	if err != nil {
		return err
	}
	errText := queryValue(req, "reason")
	if errText == "" {
		errText = queryValue(req, "error")
	}
	if err := calls.CompleteStream(r.Context(), req.hub, req.conn, req.stream, errText); err != nil {
		return callError(err)
	}
	return nil
}

// queryValue is the first value of a query key matched case-insensitively.
func queryValue(req *request, name string) string {
	for k, vs := range req.values() {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// checkStreamID applies the swagger's rule: 1 to 100 characters, not only spaces.
func checkStreamID(s string) error {
	if s == "" || len(s) > 100 || strings.TrimSpace(s) == "" {
		return invalid("stream id must be 1 to 100 characters and not only spaces")
	}
	return nil
}

// ClientCallTarget reports whether r is a client-result or stream operation
// (.../connections/{id}/:invoke or .../connections/{id}/streams/{streamId}/:send or
// :complete, on either prefix) and names its effective hub and connection. In a
// cluster these must run on the node that holds the connection; anything malformed
// reports false and is left to the handler to refuse.
func ClientCallTarget(r *http.Request) (hub, connID string, ok bool) {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(segs) > 0 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1]
	}
	if len(segs) < 2 || !strings.EqualFold(segs[0], "api") {
		return "", "", false
	}
	segs = segs[1:]
	if strings.EqualFold(segs[0], "v1") {
		segs = segs[1:]
	}
	// hubs {hub} connections {id} (:invoke | streams {sid} (:send|:complete))
	if len(segs) < 5 || !strings.EqualFold(segs[0], "hubs") || !strings.EqualFold(segs[2], "connections") {
		return "", "", false
	}
	tail := segs[4:]
	switch {
	case len(tail) == 1 && strings.EqualFold(tail[0], ":invoke"):
	case len(tail) == 3 && strings.EqualFold(tail[0], "streams") &&
		(strings.EqualFold(tail[2], ":send") || strings.EqualFold(tail[2], ":complete")):
	default:
		return "", "", false
	}
	rawHub, err1 := url.PathUnescape(segs[1])
	id, err2 := url.PathUnescape(segs[3])
	if err1 != nil || err2 != nil || id == "" {
		return "", "", false
	}
	h, err := effectiveHub(rawHub, r.URL.Query()["application"])
	if err != nil {
		return "", "", false
	}
	return h, id, true
}
