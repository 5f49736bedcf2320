package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// Completion error texts sent to the client; the status-code one is the cloud service's
// wording, which clients and tests match.
const (
	ErrTextInvalidResponse = "Invocation failed, invalid response."
	ErrTextTimeout         = "Invocation failed, upstream timed out."
	ErrTextUnreachable     = "Invocation failed, upstream unreachable."
	ErrTextTooLarge        = "Invocation failed, response too large."
	ErrTextQueueFull       = "Invocation failed, too many pending invocations."
	// ErrTextOverloaded starts the text of an invocation refused because too many
	// upstream calls are in flight (for its event, its hub, or the whole service).
	ErrTextOverloaded   = "Invocation failed, upstream overloaded"
	ErrTextShutdown     = "Invocation failed, service shutting down."
	errTextStatusPrefix = "Invocation failed, status code "
)

type itemKind uint8

const (
	kindInvocation itemKind = iota
	kindConnected
	kindDisconnected
)

// item is one unit of a session's work: an event or an invocation, with its body encoded
// when queued so the server may reuse the Invocation it passed.
type item struct {
	kind  itemKind
	rt    *route // where it goes; rt.part is its isolation unit
	event string
	id    string // invocation id; "" = non-blocking or event
	body  []byte
	// arrived is when Invoke took the invocation (set only when invocations may wait
	// for a slot): its wait for a slot ends SlotWait after it, however long it queued
	// behind its connection's earlier calls.
	arrived time.Time
}

// Session is the upstream side of one client connection. Its methods never block on the
// upstream; they are safe for concurrent use, and the order of calls is the order the
// upstream sees (with Parallelism 1).
type Session struct {
	u           *Upstream
	id          string
	hub         string
	proto       protocol.Protocol
	contentType string
	headers     map[string]string // X-ASRS-* shared by every request of the session
	lastRoute   atomic.Pointer[route]
	sig         atomic.Pointer[signature]

	replyMu sync.Mutex
	reply   func(frame []byte)

	onRejected func(reason string)

	// refused is the refusal this session sent last: under overload a connection's
	// invocations are refused one after another, nearly always for the same event.
	refused atomic.Pointer[refusal]

	mu            sync.Mutex
	queue         []item
	pending       int // invocations in queue
	pendingBytes  int // their bodies
	running       int // worker goroutines of this session
	inflight      int // items being processed
	eventInFlight bool
	connected     bool
	disconnected  bool
	fullLogged    bool // one log line per episode of a full queue, not one per rejection
}

// Open starts the upstream session of one connection. reply receives frames in
// info.Protocol (Completion messages for invocations with an id); it is called from the
// session's workers, or synchronously from Invoke when the invocation fails at once, never
// concurrently with itself for one session, possibly after Disconnected while queued
// invocations finish. It must not block (enqueue the frame and return).
func (u *Upstream) Open(info ConnInfo, reply func(frame []byte)) *Session {
	proto := info.Protocol
	if proto == nil {
		proto = protocol.JSON()
	}
	hub := strings.ToLower(info.Hub)
	s := &Session{
		u:           u,
		id:          info.ID,
		hub:         hub,
		proto:       proto,
		contentType: "application/json",
		reply:       reply,
		onRejected:  info.OnRejected,
	}
	if proto.Binary() {
		s.contentType = "application/x-msgpack"
	}
	s.headers = map[string]string{
		"X-ASRS-Connection-Id": headerValue(info.ID),
		"X-ASRS-Hub":           headerValue(hub),
	}
	if info.UserID != "" {
		s.headers["X-ASRS-User-Id"] = headerValue(info.UserID)
	}
	if c := formatClaims(auth.UserClaims(info.Claims)); c != "" {
		s.headers["X-ASRS-User-Claims"] = c
	}
	if q := cleanQuery(info.Query); q != "" {
		s.headers["X-ASRS-Client-Query"] = headerValue(q)
	}
	return s
}

// Connected queues the connected event (once); it is delivered before anything queued
// after it and retried on network errors and 5xx.
func (s *Session) Connected() {
	s.mu.Lock()
	if s.connected || s.disconnected {
		s.mu.Unlock()
		return
	}
	s.connected = true
	s.mu.Unlock()
	s.queueEvent(kindConnected, EventConnected, []byte(`{"type":10}`))
}

// Disconnected queues the disconnected event (once, and only after Connected): it is
// delivered after every invocation queued before it has finished. errText is empty for a
// clean close. Invocations after Disconnected are dropped.
func (s *Session) Disconnected(errText string) {
	s.mu.Lock()
	if s.disconnected {
		s.mu.Unlock()
		return
	}
	s.disconnected = true
	wasConnected := s.connected
	s.mu.Unlock()
	if !wasConnected {
		return
	}
	body, err := json.Marshal(struct {
		Type  int    `json:"type"`
		Error string `json:"error,omitempty"`
	}{Type: 11, Error: errText})
	if err != nil { // cannot happen for a struct of an int and a string
		body = []byte(`{"type":11}`)
	}
	s.queueEvent(kindDisconnected, EventDisconnected, body)
}

// rejected ends the session after the upstream refused its connected event (see
// Options.RejectConnections): nothing more goes upstream, not even disconnected, and the
// invocations waiting behind connected are dropped (the connection is being closed).
func (s *Session) rejected(reason string) {
	s.mu.Lock()
	s.disconnected = true
	kept := s.queue[:0]
	for _, it := range s.queue {
		if it.kind != kindInvocation {
			kept = append(kept, it)
		}
	}
	s.queue, s.pending, s.pendingBytes = kept, 0, 0
	s.mu.Unlock()
	if s.onRejected != nil {
		s.onRejected(reason)
	}
}

func (s *Session) queueEvent(kind itemKind, event string, body []byte) {
	rt := s.route(CategoryConnections, event)
	if rt == nil {
		s.u.stats.noRule.Add(1)
		return
	}
	s.enqueue(item{kind: kind, rt: rt, event: event, body: body})
}

// Invoke queues one client invocation, re-encoded at once in the client's protocol (the
// server may reuse inv afterwards). With an id, the result reaches the client through
// reply; errors that are known at once (no rule, queue full, encoding) are replied before
// Invoke returns.
func (s *Session) Invoke(inv *protocol.Invocation) {
	if inv == nil {
		return
	}
	s.mu.Lock()
	closed := s.disconnected
	full := s.pending >= s.u.queueSize
	s.mu.Unlock()
	if closed {
		return
	}
	id := inv.InvocationID
	rt := s.route(CategoryMessages, inv.Target)
	if rt == nil {
		s.u.stats.noRule.Add(1)
		s.fail(id, "Invocation failed, no upstream matches hub "+s.hub+", event "+inv.Target+".")
		return
	}
	if full {
		s.queueFull(id, inv.Target)
		return
	}
	// Refused now rather than when a worker would start it: fail fast, before the
	// encoding and the hand-off to a worker. The worker checks again as it takes the slot.
	if hit := s.u.saturated(rt.part, s.hub); hit != hitNone {
		rf := s.u.overloaded(s, inv.Target, hit)
		if id != "" {
			s.send(s.refusalFrame(id, rf))
		}
		return
	}
	body, err := s.proto.AppendUnframed(nil, inv)
	if err != nil {
		s.u.log.Warn("upstream: cannot encode invocation", "hub", s.hub, "event", inv.Target,
			"connectionId", s.id, "error", err)
		s.fail(id, "Invocation failed, error: cannot encode the invocation.")
		return
	}
	it := item{kind: kindInvocation, rt: rt, event: inv.Target, id: id, body: body}
	if s.u.slotWait > 0 {
		it.arrived = time.Now()
	}
	s.enqueue(it)
}

func (s *Session) queueFull(id, event string) {
	s.u.stats.queueFull.Add(1)
	s.mu.Lock()
	first := !s.fullLogged
	s.fullLogged = true
	s.mu.Unlock()
	if first {
		s.u.log.Warn("upstream queue of a connection is full; rejecting its invocations until it drains",
			"hub", s.hub, "event", event, "connectionId", s.id, "queueSize", s.u.queueSize,
			"cause", "the function app answers slower than this client invokes")
	}
	s.fail(id, ErrTextQueueFull)
}

// enqueue adds it and starts a worker when one may run; it re-checks the queue bound under
// the lock because Invoke checked it without holding the lock while encoding.
func (s *Session) enqueue(it item) {
	s.mu.Lock()
	if it.kind == kindInvocation {
		if s.disconnected { // raced with Disconnected: the upstream must not see it after
			s.mu.Unlock()
			return
		}
		if s.pending >= s.u.queueSize || (s.pending > 0 && s.pendingBytes+len(it.body) > s.u.queueBytes) {
			s.mu.Unlock()
			s.queueFull(it.id, it.event)
			return
		}
		s.pending++
		s.pendingBytes += len(it.body)
		if s.pending <= s.u.queueSize/2 {
			s.fullLogged = false
		}
	}
	s.queue = append(s.queue, it)
	rejected := s.spawnLocked()
	s.mu.Unlock()
	s.rejectAll(rejected)
}

// spawnLocked starts workers while there is poppable work and room under Parallelism. If
// the Upstream no longer accepts work and no worker of this session runs, the queue is
// emptied and returned for rejection.
func (s *Session) spawnLocked() []item {
	for s.running < s.u.par && len(s.queue) > s.running-s.inflight && s.canPopLocked() {
		if !s.u.addWorker() {
			if s.running > 0 {
				return nil
			}
			rejected := s.queue
			s.queue, s.pending, s.pendingBytes = nil, 0, 0
			return rejected
		}
		if s.running == 0 {
			s.u.stats.busySessions.Add(1)
		}
		s.running++
		s.u.startWorker(s)
	}
	return nil
}

// canPopLocked keeps events exclusive: connected finishes before any invocation starts,
// and disconnected starts only after every earlier invocation finished.
func (s *Session) canPopLocked() bool {
	if len(s.queue) == 0 {
		return false
	}
	if s.queue[0].kind == kindInvocation {
		return !s.eventInFlight
	}
	return s.inflight == 0
}

func (s *Session) work() {
	defer s.u.doneWorker()
	s.mu.Lock()
	for s.canPopLocked() {
		it := s.queue[0]
		s.queue[0] = item{}
		s.queue = s.queue[1:]
		if len(s.queue) == 0 {
			s.queue = nil // let the backing array go
		}
		event := it.kind != kindInvocation
		if event {
			s.eventInFlight = true
		} else {
			s.pending--
			s.pendingBytes -= len(it.body)
		}
		s.inflight++
		s.spawnLocked() // more invocations may run beside this one
		s.mu.Unlock()

		s.process(&it)

		s.mu.Lock()
		s.inflight--
		if event {
			s.eventInFlight = false
		}
	}
	s.running--
	if s.running == 0 {
		s.u.stats.busySessions.Add(-1)
	}
	s.mu.Unlock()
}

func (s *Session) process(it *item) {
	// One connection's call must not take the process down; its invocation fails.
	defer func() {
		if p := recover(); p != nil {
			s.u.log.Error("upstream: panic while processing a call; it fails", "hub", s.hub, "event", it.event,
				"connectionId", s.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if it.kind == kindInvocation {
				s.fail(it.id, "Invocation failed, internal error.")
			}
		}
	}()
	if s.u.isAborted() {
		s.rejectAll([]item{*it})
		return
	}
	if it.kind != kindInvocation {
		s.u.sendEvent(s, it)
		return
	}
	frame := s.u.invoke(s, it)
	if it.id != "" && frame != nil {
		s.send(frame)
	}
}

func (s *Session) rejectAll(items []item) {
	for _, it := range items {
		s.u.stats.shutdown.Add(1)
		if it.kind == kindInvocation {
			s.fail(it.id, ErrTextShutdown)
		}
	}
}

// fail sends a Completion error for invocation id; non-blocking invocations (no id) get
// nothing, as the client expects no answer.
func (s *Session) fail(id, text string) {
	if id == "" {
		return
	}
	s.send(s.completionFrame(id, text))
}

func (s *Session) completionFrame(id, errText string) []byte {
	frame, err := s.proto.AppendFrame(nil, &protocol.Completion{InvocationID: id, Error: errText})
	if err != nil {
		s.u.log.Error("upstream: cannot encode completion", "connectionId", s.id, "error", err)
		return nil
	}
	return frame
}

// refusal is the Completion of an invocation refused as overloaded, for one event
// and limit, encoded once but for the invocation id: a refusal must cost far less
// than a call, and building its text and encoding its frame were most of what it
// cost in user space (docs/performance.md, S2).
type refusal struct {
	event string
	hit   limitHit
	text  string
	// head and tail are the frame around the id's characters, when the protocol
	// writes an id as is between them (JSON, for an id that needs no escaping).
	head, tail []byte
}

// idMarker stands for the invocation id in the frame encoded once.
const idMarker = "sbx0id0marker"

// refusalFor returns the session's refusal of an invocation of event at hit.
func (s *Session) refusalFor(event string, hit limitHit) *refusal {
	if rf := s.refused.Load(); rf != nil && rf.hit == hit && rf.event == event {
		return rf
	}
	rf := &refusal{event: event, hit: hit, text: s.u.overloadedText(s, event, hit)}
	if !s.proto.Binary() {
		if frame := s.completionFrame(idMarker, rf.text); bytes.Count(frame, []byte(idMarker)) == 1 {
			i := bytes.Index(frame, []byte(idMarker))
			rf.head, rf.tail = frame[:i], frame[i+len(idMarker):]
		}
	}
	s.refused.Store(rf)
	return rf
}

// refusalFrame is rf's Completion for invocation id.
func (s *Session) refusalFrame(id string, rf *refusal) []byte {
	if rf.head == nil || !plainID(id) {
		return s.completionFrame(id, rf.text)
	}
	frame := make([]byte, 0, len(rf.head)+len(id)+len(rf.tail))
	frame = append(frame, rf.head...)
	frame = append(frame, id...)
	return append(frame, rf.tail...)
}

// plainID reports whether id is written as is inside a JSON string (clients send
// counters: "1", "2", ...).
func plainID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (s *Session) send(frame []byte) {
	if frame == nil || s.reply == nil {
		return
	}
	s.replyMu.Lock()
	defer s.replyMu.Unlock()
	s.reply(frame)
}

// formatClaims renders claims as the Functions extension parses them: "type: value" items
// joined by ", ". The extension splits on every comma, so a comma inside a claim would let
// a token holder inject claims ("x, role: admin"); commas are sent as %2C instead.
func formatClaims(claims []auth.Claim) string {
	if len(claims) == 0 {
		return ""
	}
	var b strings.Builder
	for i, c := range claims {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(claimText(c.Type))
		b.WriteString(": ")
		b.WriteString(claimText(c.Value))
	}
	return b.String()
}

var commaEscaper = strings.NewReplacer(",", "%2C")

func claimText(s string) string {
	return commaEscaper.Replace(headerValue(s))
}

// cleanQuery returns the query with a leading '?' and without any access_token parameter
// (bearer tokens must not reach upstream logs), keeping the rest byte for byte.
func cleanQuery(q string) string {
	q = strings.TrimPrefix(q, "?")
	if q == "" {
		return ""
	}
	kept := make([]string, 0, 4)
	for part := range strings.SplitSeq(q, "&") {
		if part == "" {
			continue
		}
		key, _, _ := strings.Cut(part, "=")
		if isAccessTokenKey(key) {
			continue
		}
		kept = append(kept, part)
	}
	if len(kept) == 0 {
		return ""
	}
	return "?" + strings.Join(kept, "&")
}

func isAccessTokenKey(key string) bool {
	if strings.EqualFold(key, "access_token") {
		return true
	}
	// Also catch encoded spellings such as access%5Ftoken.
	if strings.Contains(key, "%") || strings.Contains(key, "+") {
		if k, err := url.QueryUnescape(key); err == nil && strings.EqualFold(strings.TrimSpace(k), "access_token") {
			return true
		}
	}
	return false
}

// headerValue replaces bytes an HTTP header value cannot carry (CR, LF, other controls),
// which would otherwise make the whole request fail.
func headerValue(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	b := []byte(v)
	for i, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}
