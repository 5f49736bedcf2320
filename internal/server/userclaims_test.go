package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// A user claim whose name collides with a JWT claim travels as asrs.u.<name> in the
// token; upstream must see it under its own name, like any other user claim.
func TestUpstreamSeesCollidingUserClaims(t *testing.T) {
	rec, upURL := newUpstream(t)
	ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
	tok := ts.tokenWith("chat", auth.Claim{Type: "role", Value: "admin"}, auth.Claim{Type: "iss", Value: "my-app"})
	n2 := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", tok, nil, nil)
	var neg negotiated
	decodeJSON(t, n2, &neg)
	c, _, err := ts.dialWS("chat", neg.ConnectionToken, tok)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	wc := &wsClient{t: t, c: c, proto: protocol.JSON(), fr: newFrameReader(protocol.JSON())}
	wc.sendRaw([]byte("{\"protocol\":\"json\",\"version\":1}\x1e"))
	if e := wc.handshake(); e != "" {
		t.Fatal(e)
	}
	// The header travels with the recorded event: the recorder lists an event before
	// its reply function runs, so state a reply function sets may not be there yet.
	ev := rec.wait(t, 3*time.Second, func(e upstreamEvent) bool { return e.Event == "connected" && e.ConnectionID == neg.ConnectionID })
	got := ev.Header.Get("X-ASRS-User-Claims")
	if !strings.Contains(got, "role: admin") || !strings.Contains(got, "iss: my-app") {
		t.Fatalf("X-ASRS-User-Claims = %q, want role and iss", got)
	}
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
