package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/protocol"
)

func TestNegotiate(t *testing.T) {
	ts := startServer(t, nil)
	tok := ts.token("chat", "u1")
	decode := func(t *testing.T, resp *http.Response) negotiated {
		t.Helper()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, readBody(t, resp))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("content type %q", ct)
		}
		var n negotiated
		if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("v1 has a separate secret token", func(t *testing.T) {
		n := decode(t, ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", tok, nil, nil))
		if n.NegotiateVersion != 1 || len(n.ConnectionID) != 22 || len(n.ConnectionToken) != 22 || n.ConnectionID == n.ConnectionToken {
			t.Fatalf("%+v", n)
		}
		if len(n.AvailableTransports) != 3 || n.AvailableTransports[0].Transport != "WebSockets" ||
			n.AvailableTransports[1].Transport != "ServerSentEvents" || len(n.AvailableTransports[1].TransferFormats) != 1 ||
			n.AvailableTransports[2].Transport != "LongPolling" {
			t.Fatalf("transports %+v", n.AvailableTransports)
		}
	})
	t.Run("v0 has no token", func(t *testing.T) {
		n := decode(t, ts.do("POST", "/client/negotiate?hub=chat", tok, nil, nil))
		if n.NegotiateVersion != 0 || n.ConnectionID == "" || n.ConnectionToken != "" {
			t.Fatalf("%+v", n)
		}
	})
	t.Run("higher versions are clamped, keys are case-insensitive", func(t *testing.T) {
		n := decode(t, ts.do("POST", "/client/negotiate?HUB=chat&NegotiateVersion=7", tok, nil, nil))
		if n.NegotiateVersion != 1 || n.ConnectionToken == "" {
			t.Fatalf("%+v", n)
		}
	})
	t.Run("stateful reconnect is claimed only when asked", func(t *testing.T) {
		n := decode(t, ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1&UseStatefulReconnect=TRUE", tok, nil, nil))
		if n.UseStatefulReconnect == nil || !*n.UseStatefulReconnect {
			t.Fatalf("asked: %+v", n)
		}
		for _, q := range []string{"", "&useStatefulReconnect=false"} {
			n := decode(t, ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1"+q, tok, nil, nil))
			if n.UseStatefulReconnect != nil {
				t.Fatalf("not asked (%q): %+v", q, n)
			}
		}
	})
	for _, v := range []string{"abc", "-1"} {
		t.Run("invalid version "+v, func(t *testing.T) {
			n := decode(t, ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion="+v, tok, nil, nil))
			if n.Error == "" || n.ConnectionID != "" {
				t.Fatalf("%+v", n)
			}
		})
	}

	errCases := []struct {
		name, method, path, tok string
		status                  int
		body                    string
	}{
		{"GET is 405", "GET", "/client/negotiate?hub=chat", tok, 405, "Method Not Allowed"},
		{"missing hub", "POST", "/client/negotiate", tok, 400, "hub"},
		{"duplicate hub", "POST", "/client/negotiate?hub=chat&Hub=chat", tok, 400, "only once"},
		{"invalid hub", "POST", "/client/negotiate?hub=9chat", tok, 400, "Invalid hub"},
		{"no token", "POST", "/client/negotiate?hub=chat", "", 401, ""},
		{"bad token", "POST", "/client/negotiate?hub=chat", "abc.def.ghi", 401, ""},
		{"token for another hub", "POST", "/client/negotiate?hub=other", tok, 401, ""},
		{"token too long", "POST", "/client/negotiate?hub=chat", strings.Repeat("a", 4097), 413, ""},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			resp := ts.do(c.method, c.path, c.tok, nil, nil)
			body := readBody(t, resp)
			if resp.StatusCode != c.status || !strings.Contains(body, c.body) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, body, c.status, c.body)
			}
			if c.status == 405 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("405 content type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestCORS(t *testing.T) {
	ts := startServer(t, nil)
	resp := ts.do("OPTIONS", "/client/negotiate?hub=chat", "", nil, map[string]string{
		"Origin":                         "https://app.example",
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "authorization, x-custom",
	})
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		h.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-SignalR-User-Agent") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "x-custom") ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "DELETE") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	resp = ts.do("POST", "/client/negotiate?hub=chat", ts.token("chat", ""), nil, map[string]string{"Origin": "https://app.example"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("negotiate: %d %v", resp.StatusCode, resp.Header)
	}
	resp = ts.do("OPTIONS", "/api/hubs/chat/:send", "", nil, map[string]string{"Origin": "https://app.example"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("api preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestHealth(t *testing.T) {
	ts := startServer(t, nil)
	for _, m := range []string{"GET", "HEAD"} {
		if resp := ts.do(m, "/api/health", "", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", m, resp.StatusCode)
		}
	}
	if resp := ts.do("POST", "/api/health", "", nil, nil); resp.StatusCode != 405 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

func TestConnectErrors(t *testing.T) {
	ts := startServer(t, nil)
	tok := ts.token("chat", "u1")
	wc, n := ts.connectWS("chat", "u1", protocol.JSON())
	_ = wc
	cases := []struct {
		name, method, path, tok string
		status                  int
		body                    string
	}{
		{"no id", "GET", "/client/?hub=chat", tok, 400, "Connection ID required"},
		{"no id POST", "POST", "/client/?hub=chat", tok, 400, "Connection ID required"},
		{"unknown id", "GET", "/client/?hub=chat&id=nope", tok, 404, "No Connection with that ID"},
		{"POST on WebSockets", "POST", "/client/?hub=chat&id=" + n.ConnectionToken, tok, 405, ""},
		{"DELETE on WebSockets", "DELETE", "/client/?hub=chat&id=" + n.ConnectionToken, tok, 400, "Cannot terminate this connection using the DELETE endpoint."},
		{"transport switch", "GET", "/client/?hub=chat&id=" + n.ConnectionToken, tok, 400, "Cannot change transports mid-connection"},
		{"public id is not the token", "GET", "/client/?hub=chat&id=" + n.ConnectionID, tok, 404, ""},
		{"no token", "GET", "/client/?hub=chat&id=" + n.ConnectionToken, "", 401, ""},
		{"other user", "GET", "/client/?hub=chat&id=" + n.ConnectionToken, ts.token("chat", "mallory"), 403, ""},
		{"other hub", "GET", "/client/?hub=other&id=" + n.ConnectionToken, ts.token("other", "u1"), 404, ""},
		{"PUT", "PUT", "/client/?hub=chat&id=" + n.ConnectionToken, tok, 405, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := ts.do(c.method, c.path, c.tok, nil, nil)
			body := readBody(t, resp)
			if resp.StatusCode != c.status || !strings.Contains(body, c.body) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, body, c.status, c.body)
			}
		})
	}
	t.Run("second WebSocket for the same id", func(t *testing.T) {
		_, resp, err := ts.dialWS("chat", n.ConnectionToken, tok)
		if err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
			t.Fatalf("err %v resp %v", err, resp)
		}
	})
}

func TestNegotiatedConnectionExpires(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.NegotiateTimeout = 30 * time.Millisecond })
	n := ts.negotiate("chat", "")
	waitFor(t, 2*time.Second, "expiry", func() bool { return ts.s.Stats().Connections == 0 })
	resp := ts.do("GET", "/client/?hub=chat&id="+n.ConnectionToken, ts.token("chat", ""), nil, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// The negotiate response is written by hand: the same bytes as json.Encoder gives for
// negotiateResponse, for every version, set of transports and stateful-reconnect
// answer, and for ids that need escaping (which the server's never do).
func TestNegotiateResponseBytes(t *testing.T) {
	ids := []string{newID(), newID() + ".node-abc", "", `<a&b>"\` + "\x01é\xff"}
	for version := range 2 {
		for _, id := range ids {
			for _, token := range ids {
				for kinds := range 8 {
					for _, sr := range []bool{false, true} {
						want := negotiateResponse{NegotiateVersion: version, ConnectionID: id, ConnectionToken: token,
							AvailableTransports: tokenSettings{transports: transport.Kind(kinds)}.offered(), UseStatefulReconnect: sr}
						var buf strings.Builder
						if err := json.NewEncoder(&buf).Encode(want); err != nil {
							t.Fatal(err)
						}
						got := appendNegotiateResponse(nil, version, id, token, transport.Kind(kinds), sr)
						if string(got) != buf.String() {
							t.Fatalf("got  %s\nwant %s", got, buf.String())
						}
					}
				}
			}
		}
	}
}
