package restapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/rawquery"
)

// Options configures the REST handler.
type Options struct {
	Hubs      Hubs            // required; without it every hub operation is a 500
	Validator *auth.Validator // nil rejects every authenticated request
	// Authenticator, when set, checks bearer tokens instead of Validator (identity-based
	// access: Microsoft Entra-style tokens besides access-key tokens).
	Authenticator Authenticator
	// Calls, when set, serves :invoke and the stream operations; nil makes them 501.
	Calls ClientCalls
	// Connections, when set, lists a hub's connections for :execute; nil makes it 501.
	Connections ConnectionLister
	// AccessKey, when set, serves GET /api/auth/accessKey and /api/v1/auth/accessKey.
	AccessKey AccessKeyFunc
	// CurrentValidator, when set, replaces Validator: it returns the validator of the
	// keys configured now (keys are reloaded without a restart).
	CurrentValidator func() *auth.Validator
	// IssueToken signs a client access token for :generateToken; hub is the
	// effective (lower-case, application-prefixed) hub. Nil makes it 501.
	IssueToken   func(hub, userID string, lifetime time.Duration) (string, error)
	Logger       *slog.Logger // nil = discard
	MaxBodyBytes int64        // default DefaultMaxBodyBytes (1 MiB)
	// Health answers /api/health and every alias of it (/api/v1/health, a trailing
	// slash, any letter case); nil answers 200.
	Health http.Handler
	// Observe, if set, is told each request with its operation (sendAll,
	// addUserToGroup, ...; "unknown" when no route matched) and response status.
	Observe func(r *http.Request, operation string, status int)
	// OnAuthFailure, if set, is told each rejected token with the validation error
	// (auth.ErrNoToken when there was none). It must not log the token.
	OnAuthFailure func(r *http.Request, err error)
	// MaxArgumentDepth bounds how deeply message arguments nest arrays and objects;
	// default DefaultMaxArgumentDepth. Deeper messages are refused with 400.
	MaxArgumentDepth int
	// MaxConcurrentBroadcasts bounds the broadcasts and group sends carried out at
	// once (0 = unlimited). One beyond waits up to BroadcastQueueWait for a slot and
	// is then refused with 503 and Retry-After: under overload every request gets an
	// answer within about that wait plus the queueing of one fan-out, instead of all
	// of them piling up until callers time out. An admitted fan-out is answered once
	// its frame is queued to every recipient; it keeps its slot until the writes are
	// done (see hub.Background).
	MaxConcurrentBroadcasts int
	BroadcastQueueWait      time.Duration
}

type handler struct {
	opts   Options
	logger *slog.Logger
	routes []route
	// broadcasts holds a token per fan-out in progress (nil = unlimited).
	broadcasts chan struct{}
}

// request is what a matched route's handler gets: the effective hub and the
// unescaped path parameters.
type request struct {
	hub    string
	user   string
	conn   string
	group  string
	stream string
	legacy bool // under /api/v1

	rawQuery string
	query    url.Values // parsed from rawQuery on first use (values)
	parsed   bool
}

// values is the request's query, parsed on first use: a send names nothing in its
// query but api-version, and parsing it allocated a map per request.
func (req *request) values() url.Values {
	if !req.parsed {
		req.query, _ = url.ParseQuery(req.rawQuery) // as url.URL.Query
		req.parsed = true
	}
	return req.query
}

type opFunc func(h *handler, w http.ResponseWriter, r *http.Request, req *request) error

// op is one operation on a route. Status is its success status; legacyStatus,
// when set, is the /api/v1 one (any 2xx satisfies the SDKs; we mirror the swagger).
type op struct {
	fn           opFunc
	name         string // for metrics (see opName)
	status       int
	legacyStatus int
}

// route is a path shape after /api[/v1]/hubs/{hub}: literal segments and
// {user} / {conn} / {group} placeholders.
type route struct {
	segs    []string
	methods map[string]op
}

// New returns the REST API handler. It serves /api/hubs/... and /api/v1/hubs/...
// plus the health endpoints; everything else under it is 404.
func New(opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxArgumentDepth <= 0 {
		opts.MaxArgumentDepth = DefaultMaxArgumentDepth
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rts := routes()
	for i := range rts {
		for m, o := range rts[i].methods {
			o.name = opName(o.fn)
			rts[i].methods[m] = o
		}
	}
	h := &handler{opts: opts, logger: logger, routes: rts}
	if opts.MaxConcurrentBroadcasts > 0 {
		h.broadcasts = make(chan struct{}, opts.MaxConcurrentBroadcasts)
	}
	return h
}

// errBusy refuses a broadcast that found no free slot in time.
var errBusy = &apiError{kind: errOverloaded, msg: "too many broadcasts are in progress; retry later"}

// admitBroadcast takes a fan-out slot, waiting up to BroadcastQueueWait; the
// caller calls endBroadcast once its fan-out is done.
func (h *handler) admitBroadcast(r *http.Request) error {
	if h.broadcasts == nil {
		return nil
	}
	select {
	case h.broadcasts <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(h.opts.BroadcastQueueWait)
	defer t.Stop()
	select {
	case h.broadcasts <- struct{}{}:
		return nil
	case <-t.C:
		return errBusy
	case <-r.Context().Done():
		return errBusy
	}
}

func (h *handler) endBroadcast() {
	if h.broadcasts != nil {
		<-h.broadcasts
	}
}

// fanOut carries out a broadcast or group send with a slot: send queues p's frame
// to every local recipient and returns, the writes go on in the background (see
// hub.Background) and the slot is given back once they are done. The answer is thus
// bounded by the admission wait and the queueing, not by thousands of writes, while
// the slots still bound the fan-outs writing at once. Queueing before answering
// keeps a caller's order: a send made after this answer queues behind p everywhere.
func (h *handler) fanOut(r *http.Request, p *hub.Payload, send func() error) error {
	if err := h.admitBroadcast(r); err != nil {
		return err
	}
	bg := hub.NewBackground(h.endBroadcast)
	p.FlushInBackground(bg)
	err := send()
	bg.Close()
	return unavailable(err)
}

// statusWriter remembers the status written, for Options.Observe.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveHealth is the health answer without Options.Health: 200, anonymously.
func serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, newErr(errMethodNotAllowed, "method %s not allowed", r.Method))
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.opts.Observe == nil {
		h.serve(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	op := h.serve(sw, r)
	if op == "" { // health
		return
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	h.opts.Observe(r, op, sw.status)
}

// serve routes and serves r; it returns the operation's name ("" for health).
func (h *handler) serve(w http.ResponseWriter, r *http.Request) string {
	// Route on the escaped path: an id may contain an escaped '/'.
	var buf [maxSegments]string
	segs := splitPath(buf[:0], strings.TrimPrefix(r.URL.EscapedPath(), "/"))
	if n := len(segs); n > 1 && segs[n-1] == "" {
		segs = segs[:n-1]
	}
	if len(segs) < 2 || !strings.EqualFold(segs[0], "api") {
		h.fail(w, r, newErr(errRouteNotFound, "no such route"))
		return unknownOperation
	}
	rest := segs[1:]
	legacy := false
	if strings.EqualFold(rest[0], "v1") {
		legacy, rest = true, rest[1:]
	}
	if len(rest) == 1 && strings.EqualFold(rest[0], "health") {
		if h.opts.Health != nil {
			h.opts.Health.ServeHTTP(w, r)
		} else {
			serveHealth(w, r)
		}
		return ""
	}
	if len(rest) == 2 && strings.EqualFold(rest[0], "auth") && strings.EqualFold(rest[1], "accessKey") {
		h.serveAccessKey(w, r)
		return "getAccessKey"
	}
	if len(rest) < 2 || !strings.EqualFold(rest[0], "hubs") {
		h.fail(w, r, newErr(errRouteNotFound, "no such route"))
		return unknownOperation
	}
	return h.serveHub(w, r, rest[1], rest[2:], legacy)
}

// maxSegments is more path segments than any route has (/api/v1/hubs/{hub} and
// six more); splitPath stops there, and a longer path matches no route.
const maxSegments = 12

// splitPath appends the '/'-separated segments of p to dst, as strings.Split does
// but without allocating while they fit in dst's capacity; it stops after
// maxSegments+1 segments (the last one then holds the rest).
func splitPath(dst []string, p string) []string {
	for len(dst) < maxSegments {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			break
		}
		dst = append(dst, p[:i])
		p = p[i+1:]
	}
	return append(dst, p)
}

// unknownOperation is the operation of a request no route matched.
const unknownOperation = "unknown"

func (h *handler) serveHub(w http.ResponseWriter, r *http.Request, rawHub string, segs []string, legacy bool) string {
	rt, params, ok := h.match(segs)
	if !ok {
		h.fail(w, r, newErr(errRouteNotFound, "no such route"))
		return unknownOperation
	}
	o, ok := rt.methods[r.Method]
	if !ok {
		w.Header().Set("Allow", allowed(rt))
		h.fail(w, r, newErr(errMethodNotAllowed, "method %s not allowed here", r.Method))
		return unknownOperation
	}
	name := o.name
	if err := h.authenticate(r); err != nil {
		h.fail(w, r, err)
		return name
	}
	if h.opts.Hubs == nil {
		h.fail(w, r, &apiError{kind: errInternal, msg: "no hubs", err: errors.New("restapi: Options.Hubs is nil")})
		return name
	}
	req, err := h.buildRequest(r, rawHub, rt, params, legacy)
	if err != nil {
		h.fail(w, r, err)
		return name
	}
	if err := o.fn(h, w, r, req); err != nil {
		h.fail(w, r, err)
		return name
	}
	status := o.status
	if legacy && o.legacyStatus != 0 {
		status = o.legacyStatus
	}
	if status != 0 { // 0: the op wrote its own response
		w.WriteHeader(status)
	}
	return name
}

// pathParams are a route's placeholders ("{user}", ...) with their raw (escaped)
// values, in path order. Routes have at most two.
type pathParams struct {
	n             int
	names, values [2]string
}

// match finds the route of a path and its placeholder values.
func (h *handler) match(segs []string) (*route, pathParams, bool) {
	for i := range h.routes {
		rt := &h.routes[i]
		if len(rt.segs) != len(segs) {
			continue
		}
		var params pathParams
		ok := true
		for j, want := range rt.segs {
			if strings.HasPrefix(want, "{") {
				params.names[params.n], params.values[params.n] = want, segs[j]
				params.n++
				continue
			}
			if !strings.EqualFold(want, segs[j]) {
				ok = false
				break
			}
		}
		if ok {
			return rt, params, true
		}
	}
	return nil, pathParams{}, false
}

func allowed(rt *route) string {
	methods := make([]string, 0, len(rt.methods))
	for m := range rt.methods {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	return strings.Join(methods, ", ")
}

func (h *handler) authenticate(r *http.Request) error {
	token := auth.TokenFromRequest(r)
	if token == "" {
		h.authFailed(r, auth.ErrNoToken)
		return newErr(errUnauthorized, "missing bearer token")
	}
	if h.opts.Authenticator != nil {
		if err := h.opts.Authenticator.AuthenticateREST(r.Context(), token, r.URL.EscapedPath()); err != nil {
			h.authFailed(r, err)
			return authError(err)
		}
		return nil
	}
	v := h.opts.Validator
	if h.opts.CurrentValidator != nil {
		v = h.opts.CurrentValidator()
	}
	if v == nil {
		return newErr(errUnauthorized, "no access keys configured")
	}
	// The escaped path, which the audience must name exactly (see ValidateREST).
	if err := v.CheckREST(token, r.URL.EscapedPath()); err != nil {
		h.authFailed(r, err)
		return &apiError{kind: errUnauthorized, msg: "invalid token", err: err}
	}
	return nil
}

func (h *handler) authFailed(r *http.Request, err error) {
	if h.opts.OnAuthFailure != nil {
		h.opts.OnAuthFailure(r, err)
	}
}

func (h *handler) buildRequest(r *http.Request, rawHub string, rt *route, params pathParams, legacy bool) (*request, error) {
	hubName, err := url.PathUnescape(rawHub)
	if err != nil {
		return nil, invalid("hub name is not a valid path segment")
	}
	req := &request{legacy: legacy, rawQuery: r.URL.RawQuery}
	// Read without parsing the whole query: most requests' query (api-version only)
	// never needs its map.
	var apps []string
	rawquery.Each(req.rawQuery, "application", false, func(v string) { apps = append(apps, v) })
	effective, err := effectiveHub(hubName, apps)
	if err != nil {
		return nil, err
	}
	req.hub = effective
	for i := range params.n {
		name, raw := params.names[i], params.values[i]
		v, err := url.PathUnescape(raw)
		if err != nil {
			return nil, invalid("%s is not a valid path segment", strings.Trim(name, "{}"))
		}
		switch name {
		case "{user}":
			err, req.user = checkID("user id", v), v
		case "{conn}":
			err, req.conn = checkID("connection id", v), v
		case "{group}":
			err, req.group = checkGroup(v), v
		case "{stream}":
			err, req.stream = checkStreamID(v), v
		}
		if err != nil {
			return nil, err
		}
	}
	return req, nil
}

// fail writes err and logs it: client errors at debug, server errors at error.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := writeError(w, r, err)
	level := slog.LevelDebug
	// A 503 is the cluster being unreachable, which the cluster logs once per
	// episode; logging every refused call too would flood the log.
	if status >= 500 && status != http.StatusServiceUnavailable {
		level = slog.LevelError
	}
	h.logger.Log(r.Context(), level, "rest: request failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Any("error", err))
}
