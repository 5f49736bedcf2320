package server

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/protocol"
)

func TestSettingsFromClaims(t *testing.T) {
	ts := settingsFromClaims([]auth.Claim{
		{Type: "asrs.s.cht", Value: "90"}, {Type: "asrs.s.htt", Value: "5"}, {Type: "asrs.s.ttl", Value: "20"},
		{Type: "asrs.s.coae", Value: "True"}, {Type: "asrs.s.aeo", Value: "2000000000"}, {Type: "role", Value: "x"},
	})
	if ts.handshakeTimeout != 30*time.Second || ts.transports != transport.WebSockets|transport.LongPolling ||
		ts.pollTimeout != 20*time.Second || !ts.authExpires.Equal(time.Unix(2000000000, 0)) {
		t.Fatalf("%+v", ts)
	}
	if ts.allows(transport.ServerSentEvents) || !ts.allows(transport.LongPolling) || len(ts.offered()) != 2 {
		t.Fatalf("transports %+v", ts.offered())
	}
	bad := settingsFromClaims([]auth.Claim{
		{Type: "asrs.s.cht", Value: "-1"}, {Type: "asrs.s.htt", Value: "9"}, {Type: "asrs.s.ttl", Value: "x"},
		{Type: "asrs.s.aeo", Value: "2000000000"}, // without coae
	})
	if bad != (tokenSettings{}) {
		t.Fatalf("%+v", bad)
	}
}

func (ts *testServer) tokenWith(hubName string, claims ...auth.Claim) string {
	ts.t.Helper()
	tok, err := auth.NewToken(testKey, auth.TokenOptions{Audience: auth.ClientAudience(ts.url, hubName), Claims: claims})
	if err != nil {
		ts.t.Fatal(err)
	}
	return tok
}

func TestTransportClaim(t *testing.T) {
	ts := startServer(t, nil)
	tok := ts.tokenWith("chat", auth.Claim{Type: "asrs.s.htt", Value: "1"})
	resp := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", tok, nil, nil)
	var n negotiated
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
		t.Fatal(err)
	}
	if len(n.AvailableTransports) != 1 || n.AvailableTransports[0].Transport != "WebSockets" {
		t.Fatalf("%+v", n.AvailableTransports)
	}
	resp = ts.do("GET", "/client/?hub=chat&id="+n.ConnectionToken, tok, nil, map[string]string{"Accept": "text/event-stream"})
	if body := readBody(t, resp); resp.StatusCode != 404 || !strings.Contains(body, "not enabled") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestAuthExpiryAndHandshakeClaims(t *testing.T) {
	ts := startServer(t, nil)
	t.Run("close on auth expiry", func(t *testing.T) {
		// aeo counts whole seconds: now+1s truncated is 0 to 1 s away, and a loaded
		// machine took longer than that to dial and shake hands, so the connection
		// closed before its handshake (without a Close message). 1 to 2 s away:
		aeo := strconv.FormatInt(time.Now().Unix()+2, 10)
		tok := ts.tokenWith("chat", auth.Claim{Type: "asrs.s.coae", Value: "true"}, auth.Claim{Type: "asrs.s.aeo", Value: aeo})
		c, _, err := ts.dialWS("chat", "", tok)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		wc := &wsClient{t: t, c: c, proto: protocol.JSON(), fr: newFrameReader(protocol.JSON())}
		wc.sendRaw([]byte("{\"protocol\":\"json\",\"version\":1}\x1e"))
		if errText := wc.handshake(); errText != "" {
			t.Fatal(errText)
		}
		cm, err := wc.waitClosed(5 * time.Second)
		if err != nil || cm == nil || !cm.AllowReconnect || !strings.Contains(cm.Error, "expired") {
			t.Fatalf("%+v %v", cm, err)
		}
	})
	t.Run("handshake timeout from the token", func(t *testing.T) {
		c, _, err := ts.dialWS("chat", "", ts.tokenWith("chat", auth.Claim{Type: "asrs.s.cht", Value: "1"}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		wc := &wsClient{t: t, c: c, proto: protocol.JSON(), fr: newFrameReader(protocol.JSON())}
		start := time.Now()
		if _, _, err := wc.readMsg(5 * time.Second); err == nil {
			t.Fatal("got a message instead of a close")
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
			t.Fatalf("closed after %v, want about 1s", d)
		}
	})
}
