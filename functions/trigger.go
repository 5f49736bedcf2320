package functions

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// TriggerPath is where the Functions host serves the SignalR trigger; configure
// <app>/runtime/webhooks/signalr as the service's upstream URL.
const TriggerPath = "/runtime/webhooks/signalr"

// DefaultMaxBodySize bounds an upstream request body (the service's own default client
// message limit is 1 MB; this leaves room for JSON escaping).
const DefaultMaxBodySize = 4 << 20

// Status texts of the trigger, written as the response body because net/http cannot set a
// reason phrase.
const (
	UnauthorizedSignatureText = "The request is unauthorized, please check the Signature."
	ParsingFailedText         = "Parsing message failed"
	MethodFailedText          = "Method execution failed."
)

// TriggerOptions configures a Trigger.
type TriggerOptions struct {
	// AccessKeys validate X-ASRS-Signature: a request passes when any key produces any of
	// its signatures. Give every configured endpoint's key (primary and secondary).
	AccessKeys []string
	// SkipSignatureValidation accepts unsigned requests. The extension does this when an
	// endpoint has no access key (identity-based); it must be asked for explicitly here, and
	// NewTrigger logs it once.
	SkipSignatureValidation bool
	// Code, when set, is required as the "code" query parameter or the x-functions-key
	// header, like the host's signalr_extension system key (401 otherwise).
	Code string
	// MaxBodySize bounds request bodies (DefaultMaxBodySize when 0); larger ones get 413.
	MaxBodySize int64
	// Logger receives unmatched events, handler failures and panics; nil discards.
	Logger *slog.Logger
}

// Trigger is the signalRTrigger binding: an http.Handler for TriggerPath that validates
// upstream requests from the service and dispatches them to handlers registered per
// (hub, category, event), matched case-insensitively.
//
// Status codes, in the order the extension checks them: 415 for a Content-Type other than
// application/json or application/x-msgpack; 400 for an empty or missing X-ASRS-Hub,
// X-ASRS-Category or X-ASRS-Event; 404 when no handler matches; 500 for a missing connection
// id, an unparsable body or a target that differs from X-ASRS-Event; 401 when the signature
// does not match (body "The request is unauthorized, please check the Signature."); then the
// handler runs: a failing connected handler gives 403, disconnected always 200, a send (no
// invocation id) 200 with an empty body, an invoke 200 with a framed Completion in the
// request's protocol. Before the ladder: 401 for a wrong TriggerOptions.Code, 405 for a method
// other than POST. The extension puts texts in the HTTP reason phrase; here they are the body.
type Trigger struct {
	keys     []string
	skip     bool
	code     string
	maxBody  int64
	log      *slog.Logger
	mu       sync.RWMutex
	handlers map[routeKey]*route
	sigs     signatureCache
}

// signatureCache keeps the expected X-ASRS-Signature values of the connections the
// trigger heard from recently: every request of a connection carries the same signature,
// and computing it (one HMAC-SHA256 per key) was a third of the trigger's own work per
// invocation. The header is still compared with them on every request, in constant time.
// The keys never change for a Trigger. Bounded: emptied when full, so connection ids
// that callers make up cost an HMAC each, as without the cache.
type signatureCache struct {
	mu sync.Mutex
	m  map[string][][]byte
}

// maxCachedSignatures bounds the connections whose signatures are kept (about 200 bytes
// each with one key).
const maxCachedSignatures = 4096

// of returns the signatures of connID under keys, computed at most once while cached.
func (c *signatureCache) of(keys []string, connID string) [][]byte {
	c.mu.Lock()
	want, ok := c.m[connID]
	c.mu.Unlock()
	if ok {
		return want
	}
	want = auth.UpstreamSignatures(keys, connID)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedSignatures {
		c.m = make(map[string][][]byte)
	}
	c.m[connID] = want
	c.mu.Unlock()
	return want
}

type routeKey struct{ hub, category, event string }

type route struct {
	routeKey
	c *compiled
}

// NewTrigger makes a trigger. Without access keys it needs SkipSignatureValidation.
func NewTrigger(opts TriggerOptions) (*Trigger, error) {
	keys := make([]string, 0, len(opts.AccessKeys))
	for _, k := range opts.AccessKeys {
		if k != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 && !opts.SkipSignatureValidation {
		return nil, errors.New("functions: trigger needs at least one access key to validate upstream signatures (or SkipSignatureValidation)")
	}
	t := &Trigger{
		keys:     keys,
		skip:     opts.SkipSignatureValidation,
		code:     opts.Code,
		maxBody:  opts.MaxBodySize,
		log:      opts.Logger,
		handlers: map[routeKey]*route{},
	}
	if t.maxBody <= 0 {
		t.maxBody = DefaultMaxBodySize
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.skip {
		t.log.Warn("signalr trigger: upstream signature validation is disabled; any caller that reaches the trigger can impersonate the service")
	}
	return t, nil
}

// Register adds a handler for (hub, category, event). category is "connections" (event
// "connected" or "disconnected") or "messages" (event = the hub method the client invokes).
// fn is a MessageFunc, a ConnectionFunc, or a func whose parameters are an optional
// context.Context, an optional *InvocationContext and then one typed parameter per argument
// (decoded with protocol.Value.Decode; the last may be variadic), and whose results are (),
// (error), (R) or (R, error). A second registration for the same key, matched
// case-insensitively, is an error.
func (t *Trigger) Register(hub, category, event string, fn any, opts ...HandlerOption) error {
	if strings.TrimSpace(hub) == "" || strings.TrimSpace(event) == "" {
		return fmt.Errorf("functions: register %q/%q/%q: hub and event are required", hub, category, event)
	}
	key := routeKey{strings.ToLower(hub), strings.ToLower(category), strings.ToLower(event)}
	switch key.category {
	case CategoryConnections:
		if key.event != EventConnected && key.event != EventDisconnected {
			return fmt.Errorf("functions: Event %s is not supported in connections", event)
		}
	case CategoryMessages:
	default:
		return fmt.Errorf("functions: Category %s is not supported", category)
	}
	var cfg handlerConfig
	for _, o := range opts {
		o(&cfg)
	}
	c, err := compile(fn, key.category == CategoryConnections, cfg)
	if err != nil {
		return fmt.Errorf("functions: register %s/%s/%s: %w", hub, category, event, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.handlers[key]; dup {
		return fmt.Errorf("functions: Duplicated key parameter hub: %s, category: %s, event: %s", key.hub, key.category, key.event)
	}
	t.handlers[key] = &route{routeKey: key, c: c}
	return nil
}

// String describes the trigger without its access keys or code.
func (t *Trigger) String() string {
	t.mu.RLock()
	n := len(t.handlers)
	t.mu.RUnlock()
	return fmt.Sprintf("functions.Trigger{keys: %d, signatureValidation: %t, code: %t, handlers: %d}", len(t.keys), !t.skip, t.code != "", n)
}

// GoString keeps %#v from printing the access keys or code.
func (t *Trigger) GoString() string { return t.String() }

// HandleConnected registers fn for the hub's connected event (see Register for the
// accepted shapes). An error from fn answers 403, which closes the connection only where
// the service treats connected as blocking (see ConnectionFunc). It panics on a duplicate
// or malformed registration, like http.ServeMux.Handle: these are programming errors.
func (t *Trigger) HandleConnected(hub string, fn any) {
	must(t.Register(hub, CategoryConnections, EventConnected, fn))
}

// HandleDisconnected registers fn for the hub's disconnected event; ic.Error holds the close
// reason. It panics on a duplicate or malformed registration.
func (t *Trigger) HandleDisconnected(hub string, fn any) {
	must(t.Register(hub, CategoryConnections, EventDisconnected, fn))
}

// HandleMessage registers fn for client invocations of method event on hub. It panics on a
// duplicate or malformed registration; use Register to get an error instead.
func (t *Trigger) HandleMessage(hub, event string, fn any, opts ...HandlerOption) {
	must(t.Register(hub, CategoryMessages, event, fn, opts...))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func (t *Trigger) lookup(k routeKey) *route {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.handlers[k]
}

// The canonical (textproto) spellings of the headers the trigger reads, under which
// net/http stores them; computed once rather than per request.
var (
	canonContentType  = http.CanonicalHeaderKey("Content-Type")
	canonConnectionID = http.CanonicalHeaderKey(HeaderConnectionID)
	canonHub          = http.CanonicalHeaderKey(HeaderHub)
	canonCategory     = http.CanonicalHeaderKey(HeaderCategory)
	canonEvent        = http.CanonicalHeaderKey(HeaderEvent)
	canonSignature    = http.CanonicalHeaderKey(HeaderSignature)
	canonUserID       = http.CanonicalHeaderKey(HeaderUserID)
	canonUserClaims   = http.CanonicalHeaderKey(HeaderUserClaims)
	canonClientQuery  = http.CanonicalHeaderKey(HeaderClientQuery)
)

// firstHeader returns the first value of the header whose canonical name is canon
// ("" when absent, as http.Header.Get).
func firstHeader(h http.Header, canon string) string {
	if v := h[canon]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// requestProtocol is the protocol of a request's Content-Type, nil when unsupported.
func requestProtocol(contentType string) protocol.Protocol {
	// The usual values without parameters need no parsing.
	switch {
	case strings.EqualFold(contentType, "application/json"):
		return protocol.JSON()
	case strings.EqualFold(contentType, "application/x-msgpack"):
		return protocol.MessagePack()
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch strings.ToLower(mt) {
	case "application/json":
		return protocol.JSON()
	case "application/x-msgpack":
		return protocol.MessagePack()
	}
	return nil
}

func (t *Trigger) codeOK(r *http.Request) bool {
	if t.code == "" {
		return true
	}
	got := r.URL.Query().Get("code")
	if got == "" {
		got = r.Header.Get("x-functions-key")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(t.code)) == 1
}

// ServeHTTP runs the status ladder described on Trigger.
func (t *Trigger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !t.codeOK(r) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	proto := requestProtocol(firstHeader(r.Header, canonContentType))
	if proto == nil {
		http.Error(w, "Unsupported Media Type", http.StatusUnsupportedMediaType)
		return
	}
	hub, category, event := firstHeader(r.Header, canonHub), firstHeader(r.Header, canonCategory), firstHeader(r.Header, canonEvent)
	for _, h := range []struct{ name, v string }{{HeaderHub, hub}, {HeaderCategory, category}, {HeaderEvent, event}} {
		if h.v == "" {
			// The extension answers 400 for an empty header and (by accident) 500 for an
			// absent one; both are the caller's fault.
			http.Error(w, h.name+" header is required", http.StatusBadRequest)
			return
		}
	}
	key := routeKey{strings.ToLower(hub), strings.ToLower(category), strings.ToLower(event)}
	rt := t.lookup(key)
	if rt == nil {
		t.log.Info("signalr trigger: no handler", "hub", key.hub, "category", key.category, "event", key.event)
		http.Error(w, fmt.Sprintf("No function for hub %q, category %q, event %q", key.hub, key.category, key.event), http.StatusNotFound)
		return
	}
	connID := firstHeader(r.Header, canonConnectionID)
	if connID == "" {
		http.Error(w, HeaderConnectionID+" header is required", http.StatusInternalServerError)
		return
	}
	ic := &InvocationContext{
		Category:     key.category,
		Event:        event,
		Hub:          hub,
		ConnectionID: connID,
		UserID:       firstHeader(r.Header, canonUserID),
		Headers:      requestHeaders(r.Header),
		Query:        parseClientQuery(r.Header),
		Claims:       parseClaims(r.Header),
		params:       rt.c.params,
	}
	// The body is parsed before the signature is checked, as in the extension; the order
	// decides which status a bad-and-unsigned request gets.
	if key.category == CategoryMessages || key.event == EventDisconnected {
		body, err := t.readBody(w, r)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, ParsingFailedText, http.StatusInternalServerError)
			return
		}
		if key.category == CategoryMessages {
			if status, text := parseInvocation(proto, body, ic); status != 0 {
				http.Error(w, text, status)
				return
			}
		} else if errText, err := parseDisconnect(proto, body); err != nil {
			http.Error(w, ParsingFailedText, http.StatusInternalServerError)
			return
		} else {
			ic.Error = errText
		}
	}
	if !t.skip && !auth.MatchUpstreamSignature(firstHeader(r.Header, canonSignature), t.sigs.of(t.keys, connID)) {
		http.Error(w, UnauthorizedSignatureText, http.StatusUnauthorized)
		return
	}
	t.dispatch(r.Context(), w, proto, rt, ic)
}

// readBody reads the request body, at most t.maxBody bytes (*http.MaxBytesError
// beyond). A body whose Content-Length is known and within the bound is read into a
// buffer of that size (the service always sends one): io.ReadAll's growing buffer
// and the MaxBytesReader were two of the trigger's allocations per invocation. The
// length is not trusted: a shorter body is read as it is, a longer one on, bounded
// as before.
func (t *Trigger) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n < 0 || n > t.maxBody {
		return io.ReadAll(http.MaxBytesReader(w, r.Body, t.maxBody))
	}
	body := make([]byte, n, n+1)
	// Not io.ReadFull: it turns the body's own io.ErrUnexpectedEOF (net/http's answer
	// to a client gone mid-body) and a plain early EOF into the same error, and only
	// the EOF is a body shorter than announced that io.ReadAll read as it is.
	for m := 0; m < len(body); {
		k, err := r.Body.Read(body[m:])
		m += k
		if errors.Is(err, io.EOF) {
			return body[:m], nil
		}
		if err != nil {
			return nil, err
		}
	}
	// The spare byte of body's capacity finds the end (or more than announced).
	m, err := io.ReadFull(r.Body, body[n:n+1])
	if m == 0 {
		if errors.Is(err, io.EOF) {
			return body, nil
		}
		return nil, err
	}
	// More than announced: all of it the bounded way, as without a length.
	return io.ReadAll(http.MaxBytesReader(w, io.NopCloser(io.MultiReader(bytes.NewReader(body[:n+1]), r.Body)), t.maxBody))
}

// parseInvocation fills ic from an unframed invocation body; a non-zero status is an error.
func parseInvocation(proto protocol.Protocol, body []byte, ic *InvocationContext) (int, string) {
	inv, err := parseInvocationBody(proto, body)
	if err != nil {
		return http.StatusInternalServerError, ParsingFailedText
	}
	if !strings.EqualFold(inv.Target, ic.Event) {
		return http.StatusInternalServerError, fmt.Sprintf("Target %q does not match event %q", inv.Target, ic.Event)
	}
	ic.Arguments = inv.Arguments
	if ic.Arguments == nil {
		ic.Arguments = []protocol.Value{}
	}
	ic.InvocationID = inv.InvocationID
	return 0, ""
}

func (t *Trigger) dispatch(ctx context.Context, w http.ResponseWriter, proto protocol.Protocol, rt *route, ic *InvocationContext) {
	switch {
	case rt.category == CategoryConnections && rt.event == EventConnected:
		if _, err := t.run(ctx, rt, ic); err != nil {
			t.log.Info("signalr trigger: connected handler failed; answering 403", "hub", rt.hub, "connectionId", ic.ConnectionID, "error", err)
			http.Error(w, errorText(err), http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	case rt.category == CategoryConnections:
		if _, err := t.run(ctx, rt, ic); err != nil {
			t.log.Warn("signalr trigger: disconnected handler failed", "hub", rt.hub, "connectionId", ic.ConnectionID, "error", err)
		}
		w.WriteHeader(http.StatusOK)
	default:
		result, err := t.run(ctx, rt, ic)
		if err != nil {
			t.log.Info("signalr trigger: handler failed", "hub", rt.hub, "event", rt.event, "connectionId", ic.ConnectionID, "error", err)
		}
		if ic.InvocationID == "" {
			w.WriteHeader(http.StatusOK)
			return
		}
		// The frame is encoded into a pooled buffer: w.Write does not keep it
		// (io.Writer's contract), and a new one grew two or three times per call.
		buf := framePool.Get().(*[]byte)
		defer putFrame(buf)
		frame, ferr := completionFrame((*buf)[:0], proto, ic.InvocationID, result, err)
		if ferr != nil {
			t.log.Warn("signalr trigger: cannot encode the result", "hub", rt.hub, "event", rt.event, "error", ferr)
			frame, ferr = completionFrame((*buf)[:0], proto, ic.InvocationID, nil, ferr)
			if ferr != nil {
				http.Error(w, ferr.Error(), http.StatusInternalServerError)
				return
			}
		}
		*buf = frame
		if proto.Binary() {
			w.Header().Set("Content-Type", "application/x-msgpack")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(frame)
	}
}

// run calls the handler, turning a panic into an error so one bad handler cannot take the
// process down.
func (t *Trigger) run(ctx context.Context, rt *route, ic *InvocationContext) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			t.log.Error("signalr trigger: handler panicked", "hub", rt.hub, "category", rt.category, "event", rt.event, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			result, err = nil, errors.New(MethodFailedText)
		}
	}()
	if rt.category == CategoryMessages {
		if err := rt.c.checkArgs(len(ic.Arguments)); err != nil {
			return nil, err
		}
	}
	return rt.c.call(ctx, ic)
}

// errorText is what the invoking client sees: a handler's own error text as it is (the
// extension passes the exception's message), the extension's text for argument count and
// type mismatches, else MethodFailedText.
func errorText(err error) (text string) {
	defer func() {
		// A typed nil error (nil pointer in a non-nil error) whose Error method dereferences it.
		if recover() != nil {
			text = MethodFailedText
		}
	}()
	var ace *ArgumentCountError
	if errors.As(err, &ace) {
		return ace.Error()
	}
	// Go's decoding internals are not the client's business; the extension's words are.
	var abe *ArgumentBindingError
	if errors.As(err, &abe) {
		return abe.ClientText()
	}
	if s := err.Error(); s != "" {
		return s
	}
	return MethodFailedText
}

// framePool holds buffers for completion frames.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledFrame bounds the buffers kept: one large result should not pin its
// buffer.
const maxPooledFrame = 64 << 10

func putFrame(b *[]byte) {
	if cap(*b) <= maxPooledFrame {
		framePool.Put(b)
	}
}

// completionFrame appends a framed Completion for invocation id to dst.
func completionFrame(dst []byte, proto protocol.Protocol, id string, result any, err error) ([]byte, error) {
	c := &protocol.Completion{InvocationID: id}
	if err != nil {
		c.Error = errorText(err)
	} else {
		v, verr := resultValue(result)
		if verr != nil {
			return nil, verr
		}
		c.Result, c.HasResult = v, true
	}
	return proto.AppendFrame(dst, c)
}
