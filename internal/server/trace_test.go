package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// nextEvent reads the live view's next "event" invocation.
func nextEvent(t *testing.T, wc *wsClient) TraceEvent {
	t.Helper()
	for {
		m := wc.next(5*time.Second, false)
		inv, ok := m.(*protocol.Invocation)
		if !ok || inv.Target != "event" {
			continue
		}
		var ev TraceEvent
		if err := inv.Arguments[0].Decode(&ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
}

func TestTraceShowsEventsAndSnapshots(t *testing.T) {
	rec, upURL := newUpstream(t)
	ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
	watcher, _ := ts.connectWS(TraceHub, "", protocol.JSON())
	waitFor(t, 5*time.Second, "the watcher", func() bool { return ts.s.Registry().ConnectionCount(TraceHub) == 1 })

	ann, n := ts.connectWS("chat", "ann", protocol.JSON())
	ev := nextEvent(t, watcher)
	if ev.Kind != "connect" || ev.Hub != "chat" || ev.UserID != "ann" || ev.ConnectionID != n.ConnectionID || ev.Transport != "WebSockets" || ev.Protocol != "json" {
		t.Fatalf("connect event %+v", ev)
	}
	if ev = nextEvent(t, watcher); ev.Kind != "upstream" || ev.Event != "connected" || ev.Status != "200" || ev.ConnectionID != n.ConnectionID {
		t.Fatalf("upstream event %+v", ev)
	}
	ann.send(&protocol.Invocation{Target: "hello", Arguments: []protocol.Value{protocol.JSONValue([]byte(`1`))}})
	if ev = nextEvent(t, watcher); ev.Kind != "invocation" || ev.Target != "hello" || ev.UserID != "ann" {
		t.Fatalf("invocation event %+v", ev)
	}
	if ev = nextEvent(t, watcher); ev.Kind != "upstream" || ev.Event != "hello" {
		t.Fatalf("upstream event %+v", ev)
	}
	path := "/api/hubs/chat/groups/g1/connections/" + n.ConnectionID
	if resp := ts.do("PUT", path, restToken(t, ts, path), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("add to group: %d", resp.StatusCode)
	}
	if ev = nextEvent(t, watcher); ev.Kind != "rest" || ev.Hub != "chat" || ev.Operation != "addConnectionToGroup" || ev.Status != "200" || ev.Method != "PUT" {
		t.Fatalf("rest event %+v", ev)
	}

	// snapshot(hub): the hub's connections with transport, protocol and groups.
	watcher.send(&protocol.Invocation{InvocationID: "1", Target: "snapshot", Arguments: []protocol.Value{protocol.JSONValue([]byte(`"Chat"`))}})
	var rows []traceConn
	for {
		if c, ok := watcher.next(5*time.Second, false).(*protocol.Completion); ok {
			if c.Error != "" {
				t.Fatal(c.Error)
			}
			if err := c.Result.Decode(&rows); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if len(rows) != 1 || rows[0].ConnectionID != n.ConnectionID || rows[0].UserID != "ann" || rows[0].Transport != "WebSockets" ||
		rows[0].Protocol != "json" || strings.Join(rows[0].Groups, ",") != "g1" {
		t.Fatalf("snapshot %+v", rows)
	}
	// The watcher itself never reached the upstream.
	rec.mu.Lock()
	for _, e := range rec.events {
		if strings.Contains(string(e.Body), TraceHub) {
			t.Errorf("the upstream heard of the live view: %+v", e)
		}
	}
	rec.mu.Unlock()
	ann.c.CloseNow()
	if ev = nextEvent(t, watcher); ev.Kind != "disconnect" || ev.ConnectionID != n.ConnectionID {
		t.Fatalf("disconnect event %+v", ev)
	}
	b, _ := json.Marshal(ev)
	if !strings.Contains(string(b), `"time"`) {
		t.Fatalf("event without time: %s", b)
	}
}

func TestNoTrace(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.NoTrace = true })
	if resp := ts.do("GET", "/_/trace", "", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/_/trace with no-trace: %d", resp.StatusCode)
	}
	if resp := ts.do("POST", "/client/negotiate?hub=_trace", ts.token(TraceHub, ""), nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("negotiate hub _trace with no-trace: %d", resp.StatusCode)
	}
	on := startServer(t, nil)
	resp := on.do("GET", "/_/trace", "", nil, nil)
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "/_/static/signalr.min.js") {
		t.Fatalf("/_/trace: %d", resp.StatusCode)
	}
	if resp := on.do("GET", "/_/static/signalr.min.js", "", nil, nil); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("signalr.min.js: %d", resp.StatusCode)
	}
	// Without a token the live view's hub refuses.
	if resp := on.do("POST", "/client/negotiate?hub=_trace", "", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("negotiate hub _trace without a token: %d", resp.StatusCode)
	}
}
