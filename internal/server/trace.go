package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/upstream"
	"github.com/signalbox-io/signalbox/internal/webui"
	"github.com/signalbox-io/signalbox/protocol"
)

// The live view (/_/trace) is a page that connects, with the official SignalR client, to
// this service's own endpoint as a client of the reserved hub "_trace" (a name no client
// hub can have: hub names start with a letter). Its token is a client token for that hub
// signed with the access key. The server sends every watcher an "event" invocation per
// connect, disconnect, client invocation, REST call and upstream call of any other hub,
// and answers its "snapshot(hub)" invocation with that hub's connections. Nothing is
// encoded while nobody watches. --no-trace turns it all off.

// TraceHub is the reserved hub of the live view.
const TraceHub = "_trace"

// TraceEvent is one event of the live view.
type TraceEvent struct {
	Time         time.Time `json:"time"`
	Kind         string    `json:"kind"` // connect, disconnect, invocation, rest, upstream
	Hub          string    `json:"hub,omitempty"`
	ConnectionID string    `json:"connectionId,omitempty"`
	UserID       string    `json:"userId,omitempty"`
	Transport    string    `json:"transport,omitempty"`
	Protocol     string    `json:"protocol,omitempty"`
	Target       string    `json:"target,omitempty"`
	Method       string    `json:"method,omitempty"`
	Path         string    `json:"path,omitempty"`
	Operation    string    `json:"operation,omitempty"`
	Status       string    `json:"status,omitempty"`
	Event        string    `json:"event,omitempty"`
	ElapsedMs    float64   `json:"elapsedMs,omitempty"`
	Reason       string    `json:"reason,omitempty"`
}

// traceConn is one row of a snapshot.
type traceConn struct {
	ConnectionID string   `json:"connectionId"`
	UserID       string   `json:"userId"`
	Transport    string   `json:"transport"`
	Protocol     string   `json:"protocol"`
	Groups       []string `json:"groups"`
}

func (s *Server) tracing() bool { return !s.cfg.NoTrace }

// watched reports whether the live view has a watcher.
func (s *Server) watched() bool { return s.tracing() && s.registry.ConnectionCount(TraceHub) > 0 }

// trace sends ev to the live view's watchers, if any.
func (s *Server) trace(ev TraceEvent) {
	if ev.Hub == TraceHub || !s.watched() {
		return
	}
	ev.Time = time.Now().UTC()
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	s.registry.SendAll(TraceHub, hub.NewPayload(&protocol.Invocation{Target: "event", Arguments: []protocol.Value{protocol.JSONValue(b)}}), nil)
}

// traceREST is the REST API's observer: metrics and the live view.
func (s *Server) traceREST(r *http.Request, operation string, status int) {
	s.metrics.RESTRequest(operation, status)
	if !s.watched() { // before the event is built: its hub and status allocate
		return
	}
	s.trace(TraceEvent{Kind: "rest", Hub: hubOfAPIPath(r.URL.Path), Method: r.Method, Path: r.URL.Path,
		Operation: operation, Status: strconv.Itoa(status)})
}

// traceUpstream is the upstream's observer: metrics and the live view.
func (s *Server) traceUpstream(c upstream.Call) {
	s.metrics.UpstreamCall(c.Status, c.Elapsed)
	s.trace(TraceEvent{Kind: "upstream", Hub: c.Hub, ConnectionID: c.ConnectionID, Event: c.Event, Status: c.Status,
		ElapsedMs: float64(c.Elapsed.Microseconds()) / 1000})
}

// hubOfAPIPath is the (lower-cased) hub of /api[/v1]/hubs/{hub}/...
func hubOfAPIPath(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+1 < len(segs); i++ {
		if strings.EqualFold(segs[i], "hubs") {
			return strings.ToLower(segs[i+1])
		}
	}
	return ""
}

// traceInvocation answers an invocation of a live-view client: snapshot(hub).
func (c *conn) traceInvocation(m *protocol.Invocation) {
	if m.InvocationID == "" {
		return
	}
	var hubName string
	if m.Target != "snapshot" || len(m.Arguments) != 1 || m.Arguments[0].Decode(&hubName) != nil {
		c.completionError(m.InvocationID, "The live view answers snapshot(hub) only.")
		return
	}
	hubName = strings.ToLower(hubName)
	rows := []traceConn{}
	for _, st := range c.s.registry.Connections(hubName) {
		row := traceConn{ConnectionID: st.ConnectionID, UserID: st.UserID, Groups: []string{}}
		if cl, ok := c.s.registry.Connection(hubName, st.ConnectionID); ok {
			if other, ok := cl.(*conn); ok {
				other.mu.Lock()
				row.Transport = other.kind.String()
				other.mu.Unlock()
				if p := other.proto; p != nil && other.handshaken.Load() {
					row.Protocol = p.Name()
				}
			}
		}
		for g := range st.Groups {
			row.Groups = append(row.Groups, g)
		}
		slices.Sort(row.Groups)
		rows = append(rows, row)
	}
	b, err := json.Marshal(rows)
	if err != nil {
		c.completionError(m.InvocationID, "The snapshot could not be encoded.")
		return
	}
	f, err := c.proto.AppendFrame(nil, &protocol.Completion{InvocationID: m.InvocationID, Result: protocol.JSONValue(b), HasResult: true})
	if err != nil {
		c.completionError(m.InvocationID, "The snapshot could not be encoded.")
		return
	}
	c.Send(f)
}

// traceRoutes adds the live view's page and the SignalR bundle it loads.
func (s *Server) traceRoutes(mux *http.ServeMux) {
	mux.Handle("/_/trace", webui.TracePage())
	mux.Handle(webui.StaticPrefix, webui.Static())
}
