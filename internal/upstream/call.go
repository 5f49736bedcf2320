package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// failKind classifies a failed upstream call for counters, logs and client texts.
type failKind uint8

const (
	failNone failKind = iota
	failStatus
	failNetwork
	failTimeout
	failTooLarge
	failInvalid
	failShutdown
	failRead
)

// result is the outcome of one HTTP attempt.
type result struct {
	kind   failKind
	status int
	body   []byte // the response body, read only for invocations with an id (or a failure)
	err    error  // without the URL, which may hold a secret
}

// do performs one POST of it. The body is read only when readBody is set; it is then
// bounded by MaxResponseSize.
func (u *Upstream) do(s *Session, it *item, category string, readBody bool) (r result) {
	if u.observe != nil {
		start := time.Now()
		defer func() {
			u.observe(Call{Hub: s.hub, ConnectionID: s.id, Event: it.event, Status: r.label(), Elapsed: time.Since(start)})
		}()
	}
	u.stats.requests.Add(1)
	u.stats.inFlight.Add(1)
	defer u.stats.inFlight.Add(-1)
	if u.fast != nil && it.rt.fast {
		return u.doFast(s, it, readBody)
	}
	ctx, done := u.callContext()
	defer done()
	req, err := newRequest(ctx, it.rt, it.body)
	if err != nil {
		return result{kind: failNetwork, err: stripURL(err)}
	}
	req.Header = s.headerFor(it.rt).h
	resp, err := u.client.Do(req)
	if err != nil {
		return result{kind: errKind(ctx, err), err: stripURL(err)}
	}
	defer drain(resp.Body)
	return u.readResponse(resp, readBody, func(err error) failKind { return errKind(ctx, err) })
}

// doFast is do through the fast client (see fastclient.go).
func (u *Upstream) doFast(s *Session, it *item, readBody bool) result {
	fc, err := u.fast.get(it.rt.addr, time.Now().Add(u.timeout))
	if err != nil {
		return result{kind: u.fastErrKind(err), err: err}
	}
	q, resp, err := fc.post(s.headerFor(it.rt).head, it.body)
	if err != nil {
		kind := u.fastErrKind(err)
		u.fast.failed(fc, kind == failNetwork)
		return result{kind: kind, err: err}
	}
	if resp == nil {
		r := u.quickResult(q, readBody)
		u.fast.finishQuick(fc, q)
		return r
	}
	r := u.readResponse(resp, readBody, u.fastErrKind)
	u.fast.finish(fc, resp)
	return r
}

// readResponse turns a response into the call's result. The body is read only when
// readBody is set; it is then bounded by MaxResponseSize. classify tells a timeout or
// a shutdown from a network failure while the body is read.
func (u *Upstream) readResponse(resp *http.Response, readBody bool, classify func(error) failKind) result {
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		// The start of an error body often says what went wrong (Functions host messages).
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return result{kind: failStatus, status: resp.StatusCode, body: snippet}
	}
	if !readBody || resp.StatusCode == http.StatusNoContent || resp.ContentLength == 0 {
		return result{status: resp.StatusCode}
	}
	if resp.ContentLength > u.maxResp {
		return result{kind: failTooLarge, status: resp.StatusCode}
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, u.maxResp+1))
	if n > u.maxResp {
		return result{kind: failTooLarge, status: resp.StatusCode}
	}
	if err != nil {
		kind := classify(err)
		if kind == failNetwork {
			kind = failRead
		}
		return result{kind: kind, status: resp.StatusCode, err: stripURL(err)}
	}
	return result{status: resp.StatusCode, body: buf.Bytes()}
}

// quickResult is readResponse for a quickReply (a 200 or a 204): the body, copied out
// of the connection's buffer, only when readBody is set.
func (u *Upstream) quickResult(q quickReply, readBody bool) result {
	if !readBody || len(q.body) == 0 {
		return result{status: q.status}
	}
	if int64(len(q.body)) > u.maxResp {
		return result{kind: failTooLarge, status: q.status}
	}
	return result{status: q.status, body: bytes.Clone(q.body)}
}

// newRequest is the POST of body to rt's target. The target URL was parsed once for the
// route and is shared, as net/http only reads a request's URL; a target that does not
// parse fails here as it did when parsed per call.
func newRequest(ctx context.Context, rt *route, body []byte) (*http.Request, error) {
	if rt.target == nil {
		return http.NewRequestWithContext(ctx, http.MethodPost, rt.url, bytes.NewReader(body))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.URL = rt.target
	req.Host = strings.TrimSuffix(rt.target.Host, ":") // as NewRequest does with an empty port
	return req, nil
}

// label names the outcome for metrics: the HTTP status of a response, else the failure.
func (r result) label() string {
	switch r.kind {
	case failTimeout:
		return "timeout"
	case failShutdown:
		return "shutdown"
	case failNetwork:
		return "network"
	case failRead:
		return "read_error"
	case failTooLarge:
		return "too_large"
	case failInvalid:
		return "invalid"
	}
	if r.status == http.StatusOK {
		return "200" // most calls: no formatting (Itoa allocates from 100 up)
	}
	return strconv.Itoa(r.status)
}

// rejectReason is the Close error a refused connection gets: the upstream's own text (the
// Functions extension answers with the connected handler's error), one line, bounded.
func rejectReason(r result) string {
	const prefix = "Connection rejected by the upstream"
	text := strings.TrimSpace(strings.ToValidUTF8(headerValue(string(r.body)), "?"))
	if len(text) > 256 {
		text = text[:256] + "..."
	}
	if text == "" {
		return prefix + " (status " + strconv.Itoa(r.status) + ")."
	}
	return prefix + ": " + text
}

// errKind tells a timeout or a shutdown from a network failure.
func errKind(ctx context.Context, err error) failKind {
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errShutdown) {
			return failShutdown
		}
		return failTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failTimeout
	}
	return failNetwork
}

// stripURL drops the *url.Error wrapper, whose text repeats the URL with its ?code= key.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryable: network errors other than timeouts (the call may have run) and 5xx.
func (r result) retryable() bool {
	return r.kind == failNetwork || (r.kind == failStatus && r.status >= 500)
}

// sendEvent delivers connected/disconnected with bounded exponential backoff.
func (u *Upstream) sendEvent(s *Session, it *item) {
	// Wait for a slot of the event, then of the hub, then of the service: always in
	// that order, and invocations never wait, so waiting cannot deadlock.
	if !u.partLimit.acquire(it.rt.part, u.aborted) {
		u.stats.shutdown.Add(1)
		return
	}
	defer u.partLimit.release(it.rt.part)
	if !u.hubLimit.acquire(s.hub, u.aborted) {
		u.stats.shutdown.Add(1)
		return
	}
	defer u.hubLimit.release(s.hub)
	select {
	case u.slots <- struct{}{}:
	case <-u.aborted:
		u.stats.shutdown.Add(1)
		return
	}
	defer func() { <-u.slots }()
	backoff := u.minBackoff
	for attempt := 1; ; attempt++ {
		r := u.do(s, it, CategoryConnections, false)
		if r.kind == failNone {
			return
		}
		u.record(s, it, CategoryConnections, r, attempt)
		if u.rejectConn && it.kind == kindConnected && r.kind == failStatus &&
			(r.status == http.StatusUnauthorized || r.status == http.StatusForbidden) {
			s.rejected(rejectReason(r))
			return
		}
		if !r.retryable() || attempt >= u.attempts {
			return
		}
		if !u.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, u.maxBackoff)
		u.stats.retries.Add(1)
	}
}

// invoke delivers one invocation (never retried) and returns the frame for the client, or
// nil for a non-blocking invocation.
func (u *Upstream) invoke(s *Session, it *item) []byte {
	if text, rf := u.acquireCall(s, it); text != "" || rf != nil {
		switch {
		case it.id == "":
			return nil
		case rf != nil:
			return s.refusalFrame(it.id, rf)
		}
		return s.completionFrame(it.id, text)
	}
	r := u.do(s, it, CategoryMessages, it.id != "")
	u.releaseCall(s, it)
	if r.kind == failNone && it.id != "" {
		if len(r.body) == 0 {
			return s.completionFrame(it.id, "")
		}
		frame, err := s.relayable(r.body, it.id)
		if err == nil {
			return frame
		}
		r = result{kind: failInvalid, status: r.status, err: err}
	}
	if r.kind == failNone {
		return nil
	}
	u.record(s, it, CategoryMessages, r, 1)
	if it.id == "" {
		return nil
	}
	return s.completionFrame(it.id, clientText(r))
}

// limitHit names the in-flight limit a call ran into.
type limitHit uint8

const (
	hitNone limitHit = iota
	hitEvent
	hitHub
	hitService
)

// acquireCall takes a slot of the invocation's event, of its hub and of the service.
// When one is full it takes none and returns the client's error text, which says what
// is saturated: a client sees at once that the function app is behind instead of
// waiting behind another event's stalled calls. Only the event's slot is waited for, up
// to Options.SlotWait and behind at most as many others as the event may have in
// flight (see eventSlot); the hub's and the service's are taken at once or not at all.
func (u *Upstream) acquireCall(s *Session, it *item) (text string, refused *refusal) {
	part := it.rt.part
	hit := hitNone
	switch {
	case !u.eventSlot(part, it.arrived):
		if u.isAborted() {
			return ErrTextShutdown, nil
		}
		hit = hitEvent
	case !u.hubLimit.tryAcquire(s.hub):
		u.partLimit.release(part)
		hit = hitHub
	default:
		select {
		case u.slots <- struct{}{}:
			if u.overloadLogged.Load() { // a store per call would bounce the line between cores
				u.overloadLogged.Store(false)
			}
			return "", nil
		default:
		}
		u.hubLimit.release(s.hub)
		u.partLimit.release(part)
		hit = hitService
	}
	return "", u.overloaded(s, it.event, hit)
}

// eventSlot takes a slot of part, waiting until u.slotWait after arrived when all are
// taken. Calls come in bursts (a client's batch, a load generator catching up, a pause
// of the function app's process): refusing every call beyond the limit the instant it
// arrives refused bursts that slots freed within milliseconds would have served, and
// the refusals cost the clients and the server nearly what the calls would have. The
// line is bounded by the event's own limit, so a call waits about one round trip at
// most while the function app keeps up; when it does not (a stalled function), a
// waiter gives up and is refused. The wait counts from the invocation's arrival, so
// that invocations queued behind their connection's earlier ones are not each given
// the whole wait again: a refusal comes at most slotWait after Invoke (plus the
// connection's calls in flight before it). Waiting holds no slot, of the event or of
// anything else: a stalled event still holds only its own slots.
func (u *Upstream) eventSlot(part string, arrived time.Time) bool {
	if u.partLimit.tryAcquire(part) {
		return true
	}
	if u.slotWait <= 0 || arrived.IsZero() {
		return false
	}
	left := u.slotWait - time.Since(arrived)
	if left <= 0 {
		return false
	}
	t := time.NewTimer(left)
	ok := u.partLimit.acquireWithin(part, u.aborted, t.C, u.partLimit.max)
	t.Stop()
	if ok {
		u.stats.slotWaits.Add(1)
	}
	return ok
}

// saturated tells, without taking a slot, which limit a call of part would run into
// now. Invoke asks it first, so that under overload a refused invocation costs neither
// its encoding nor a worker: refusals must be much cheaper than calls, or they eat the
// CPU the admitted calls need and goodput collapses as the offered load grows. An
// event whose slots are taken refuses only once its line of waiters is full too.
func (u *Upstream) saturated(part, hub string) limitHit {
	switch {
	case u.partLimit.lineFull(part, u.eventLine()):
		return hitEvent
	case u.hubLimit.full(hub):
		return hitHub
	case len(u.slots) >= cap(u.slots):
		return hitService
	}
	return hitNone
}

// eventLine is how many invocations may wait for a slot of one event.
func (u *Upstream) eventLine() int {
	if u.slotWait <= 0 {
		return 0
	}
	return u.partLimit.max
}

// overloaded counts and logs (once per episode) an invocation refused at hit and
// returns the refusal for the client.
func (u *Upstream) overloaded(s *Session, event string, hit limitHit) *refusal {
	u.stats.overloaded.Add(1)
	if !u.overloadLogged.Load() && !u.overloadLogged.Swap(true) {
		setting, limit := u.limitOf(hit)
		u.log.Warn("upstream calls in flight reached a limit; rejecting invocations until some finish",
			"limit", setting, "maxInFlight", limit, "hub", s.hub, "event", event, "connectionId", s.id,
			"cause", "the function app answers slower than clients invoke (raise the limit or scale the function app)")
	}
	return s.refusalFor(event, hit)
}

// limitOf names the setting of the limit hit and its value.
func (u *Upstream) limitOf(hit limitHit) (setting string, limit int) {
	switch hit {
	case hitEvent:
		return "upstream-max-in-flight-per-event", u.partLimit.max
	case hitHub:
		return "upstream-max-in-flight-per-hub", u.hubLimit.max
	}
	return "upstream-max-in-flight", cap(u.slots)
}

// overloadedText is the client's error text of an invocation of event refused at hit.
func (u *Upstream) overloadedText(s *Session, event string, hit limitHit) string {
	var what string
	switch hit {
	case hitEvent:
		what = "event " + event + " of hub " + s.hub
	case hitHub:
		what = "hub " + s.hub
	default:
		what = "the service"
	}
	_, limit := u.limitOf(hit)
	return ErrTextOverloaded + ": " + strconv.Itoa(limit) + " calls in flight for " + what + "."
}

func (u *Upstream) releaseCall(s *Session, it *item) {
	<-u.slots
	u.hubLimit.release(s.hub)
	u.partLimit.release(it.rt.part)
}

func clientText(r result) string {
	switch r.kind {
	case failStatus:
		return errTextStatusPrefix + strconv.Itoa(r.status)
	case failTimeout:
		return ErrTextTimeout
	case failNetwork:
		return ErrTextUnreachable
	case failTooLarge:
		return ErrTextTooLarge
	case failInvalid:
		return ErrTextInvalidResponse
	case failShutdown:
		return ErrTextShutdown
	default:
		return "Invocation failed, error: " + r.err.Error() + "."
	}
}

// relayable checks that body is exactly one Completion in the client's protocol and returns
// the frame to send: body itself when it is framed and carries the client's id, else a
// re-encoding (the client only resolves a Completion with its own id). An unframed message
// is accepted too, as some upstream implementations omit the framing.
func (s *Session) relayable(body []byte, id string) (frame []byte, err error) {
	// The body comes from outside the service; a parser bug must cost one invocation, not
	// the process.
	defer func() {
		if p := recover(); p != nil {
			frame, err = nil, fmt.Errorf("parse response: internal error: %v", p)
		}
	}()
	msg, framed, err := parseOne(s.proto, body, len(body))
	if err != nil {
		return nil, err
	}
	c, ok := msg.(*protocol.Completion)
	if !ok || c == nil {
		return nil, fmt.Errorf("response is message type %d, not a Completion", msg.Type())
	}
	if framed && c.InvocationID == id {
		return body, nil
	}
	c.InvocationID = id
	frame, err = s.proto.AppendFrame(nil, c)
	if err != nil {
		return nil, fmt.Errorf("re-encode completion: %w", err)
	}
	return frame, nil
}

func parseOne(p protocol.Protocol, body []byte, maxSize int) (msg protocol.Message, framed bool, err error) {
	d := protocol.NewDecoder(p, maxSize+16)
	d.Write(body)
	msg, err = d.Next()
	if err == nil && msg != nil {
		extra, err2 := d.Next()
		if err2 != nil || extra != nil {
			return nil, false, errors.New("response holds more than one message")
		}
		if !endsAtFrame(p, body) {
			return nil, false, errors.New("response has bytes after the message")
		}
		return msg, true, nil
	}
	um, uerr := p.ParseUnframed(body)
	if uerr == nil && um != nil {
		return um, false, nil
	}
	if err == nil {
		err = errors.New("response is not a complete message")
	}
	return nil, false, fmt.Errorf("parse response: %w", err)
}

// endsAtFrame guards against a trailing partial frame, which the decoder keeps buffered and
// reports as "need more bytes" rather than as an error.
func endsAtFrame(p protocol.Protocol, body []byte) bool {
	if !p.Binary() {
		return len(body) > 0 && body[len(body)-1] == 0x1e
	}
	return frameLenMsgPack(body) == len(body)
}

// frameLenMsgPack returns the length of the first VarInt-prefixed frame of b, or -1.
func frameLenMsgPack(b []byte) int {
	var n, shift int
	for i := 0; i < len(b) && i < 5; i++ {
		n |= int(b[i]&0x7f) << shift
		if b[i]&0x80 == 0 {
			return i + 1 + n
		}
		shift += 7
	}
	return -1
}

// record counts a failed call and logs it, with the URL stripped of secrets and the most
// likely cause, so an operator can fix the function app or the upstream setting.
func (u *Upstream) record(s *Session, it *item, category string, r result, attempt int) {
	level := slog.LevelWarn
	if r.kind == failShutdown {
		level = slog.LevelInfo // our own doing, not the upstream's failure
	} else {
		u.stats.failures.Add(1)
	}
	switch r.kind {
	case failStatus:
		u.stats.failedStatus.Add(1)
	case failTimeout:
		u.stats.failedTimeout.Add(1)
	case failNetwork, failRead:
		u.stats.failedNetwork.Add(1)
	case failTooLarge:
		u.stats.failedTooLarge.Add(1)
	case failInvalid:
		u.stats.failedInvalid.Add(1)
	case failShutdown:
		u.stats.shutdown.Add(1)
	}
	attrs := []any{
		"url", redactURL(it.rt.url),
		"hub", s.hub,
		"category", category,
		"event", it.event,
		"connectionId", s.id,
		"status", r.status,
		"cause", likelyCause(r, category),
	}
	if r.err != nil {
		attrs = append(attrs, "error", r.err.Error())
	}
	if r.kind == failStatus && len(r.body) > 0 {
		attrs = append(attrs, "response", u.redactBody(it.rt.url, strings.ToValidUTF8(headerValue(string(r.body)), "?")))
	}
	if attempt > 1 {
		attrs = append(attrs, "attempt", attempt)
	}
	u.log.Log(context.Background(), level, "upstream call failed", attrs...)
}

func likelyCause(r result, category string) string {
	switch r.kind {
	case failStatus:
		switch {
		case r.status == http.StatusNotFound:
			return "no function handles this hub/event (check the function's hubName/category/event and the upstream URL path /runtime/webhooks/signalr)"
		case r.status == http.StatusUnauthorized:
			return "the function app rejected the request: check the ?code= key in the upstream URL, or the access key the function app validates X-ASRS-Signature with"
		case r.status == http.StatusForbidden && category == CategoryConnections:
			// The Functions extension answers 403 when the function's connected handler
			// fails; a bad key or signature is a 401.
			return "the function refused the connection (its connected handler returned an error)"
		case r.status == http.StatusForbidden:
			return "the function app refused the request"
		case r.status >= 500:
			return "the function failed"
		case r.status == http.StatusUnsupportedMediaType:
			return "the upstream does not accept this content type: is the URL the SignalR trigger endpoint /runtime/webhooks/signalr?"
		case r.status >= 300 && r.status < 400:
			return "the upstream redirected; redirects are not followed, configure the final URL"
		default:
			return "the upstream rejected the request"
		}
	case failNetwork, failRead:
		return "the function app is not reachable at this URL"
	case failTimeout:
		return "the function did not answer in time (raise the upstream timeout or make the function faster)"
	case failTooLarge:
		return "the function returned a result larger than the limit"
	case failInvalid:
		return "the function's answer is not a Completion message in the client's protocol"
	case failShutdown:
		return "the service is shutting down"
	}
	return "unknown"
}

// secretParam matches "name=value" for parameter names that usually carry a secret.
var secretParam = regexp.MustCompile(`(?i)\b(code|sig|signature|key|token|access_token|secret|password|pwd)(=|%3D)[^&\s"'<>;,]+`)

// jwtLike matches a JSON Web Token (three base64url parts, the first a JSON object).
var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)

// redactBody hides what an upstream error body may echo of our secrets before it is
// logged: the query values of the URL called (a function key ?code=), the access keys,
// anything that looks like a secret parameter or a token.
func (u *Upstream) redactBody(target, body string) string {
	var secrets []string
	if pu, err := url.Parse(target); err == nil {
		for _, vs := range pu.Query() {
			secrets = append(secrets, vs...)
		}
		if p, ok := pu.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	secrets = append(secrets, u.accessKeys()...)
	for _, sec := range secrets {
		if len(sec) >= 4 { // shorter values are not secrets worth the false hits
			body = strings.ReplaceAll(body, sec, "***")
			if esc := url.QueryEscape(sec); esc != sec {
				body = strings.ReplaceAll(body, esc, "***")
			}
		}
	}
	body = secretParam.ReplaceAllString(body, "$1$2***")
	return jwtLike.ReplaceAllString(body, "***")
}
