package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// restCall makes a REST call with a token for its path and returns the status, the
// x-ms-error-code and the body.
func (ts *testServer) restCall(method, path, body string) (int, string, string) {
	ts.t.Helper()
	tok, err := auth.NewToken(testKey, auth.TokenOptions{Audience: auth.RESTAudience(ts.url, path)})
	if err != nil {
		ts.t.Fatal(err)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	resp := ts.do(method, path, tok, rd, map[string]string{"Content-Type": "application/json"})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("x-ms-error-code"), string(b)
}

// Issue 7, limit "groups per connection": a REST group add beyond
// max-groups-per-connection is refused with 409 and a code saying whose limit it is,
// nothing is added, the connection goes on receiving, and a reload changes the figure.
func TestGroupsPerConnectionLimit(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxGroupsPerConnection = 2 })
	ws, n := ts.connectWS("chat", "ann", protocol.JSON())
	id := n.ConnectionID
	for _, g := range []string{"g1", "g2", "g2"} {
		if st, code, body := ts.restCall("PUT", "/api/hubs/chat/groups/"+g+"/connections/"+id, ""); st != http.StatusOK {
			t.Fatalf("add to %s: %d %s %s", g, st, code, body)
		}
	}
	st, code, body := ts.restCall("PUT", "/api/hubs/chat/groups/g3/connections/"+id, "")
	var e struct{ Code, Message string }
	_ = json.Unmarshal([]byte(body), &e)
	if st != http.StatusConflict || code != "Error.Connection.TooManyGroups" || e.Code != code ||
		e.Message != "The connection is already in 2 groups, the limit per connection (max-groups-per-connection); remove it from a group first." {
		t.Fatalf("third group: %d %s %s", st, code, body)
	}
	if st, _, _ := ts.restCall("HEAD", "/api/hubs/chat/groups/g3", ""); st != http.StatusNotFound {
		t.Fatalf("the refused add took effect: group g3 answers %d", st)
	}
	// :execute leaves the full connection out and answers 202.
	if st, _, body := ts.restCall("POST", "/api/hubs/chat/:execute", `[{"type":"JoinGroup","group":"g4"}]`); st != http.StatusAccepted {
		t.Fatalf(":execute: %d %s", st, body)
	}
	if st, _, _ := ts.restCall("HEAD", "/api/hubs/chat/groups/g4", ""); st != http.StatusNotFound {
		t.Fatalf(":execute added a full connection: %d", st)
	}
	// The user's memberships have the same limit.
	for _, g := range []string{"u1", "u2"} {
		if st, code, body := ts.restCall("PUT", "/api/hubs/chat/users/bob/groups/"+g, ""); st != http.StatusOK {
			t.Fatalf("add user to %s: %d %s %s", g, st, code, body)
		}
	}
	if st, code, body := ts.restCall("PUT", "/api/hubs/chat/users/bob/groups/u3", ""); st != http.StatusConflict || code != "Error.User.TooManyGroups" ||
		!strings.Contains(body, "The user is already in 2 groups, the limit per user (max-groups-per-connection)") {
		t.Fatalf("third user group: %d %s %s", st, code, body)
	}
	// The connection still receives its groups' messages.
	if st, _, body := ts.restCall("POST", "/api/hubs/chat/groups/g1/:send", `{"target":"inGroup","arguments":["x"]}`); st != http.StatusAccepted {
		t.Fatalf("send to g1: %d %s", st, body)
	}
	if target, _ := invocationText(t, ws.next(2*time.Second, false)); target != "inGroup" {
		t.Fatalf("got %s", target)
	}
	ts.reload(func(c *Config) { c.MaxGroupsPerConnection = 3 })
	if st, code, body := ts.restCall("PUT", "/api/hubs/chat/groups/g3/connections/"+id, ""); st != http.StatusOK {
		t.Fatalf("after raising the limit by a reload: %d %s %s", st, code, body)
	}
}

// Issue 7, limit "token size": max-token-size bounds the token on the client endpoints
// (413 naming the figure) and the REST API (401); the default keeps 4096.
func TestMaxTokenSize(t *testing.T) {
	// padded is a valid token for aud of at most size characters, close to it; signed
	// here because auth.NewToken, like the Azure SDK, mints nothing over 4096.
	padded := func(aud string, size int) string {
		t.Helper()
		for pad := size * 3 / 4; pad > 0; pad-- {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"aud": aud, "exp": time.Now().Add(time.Hour).Unix(), "pad": strings.Repeat("x", pad),
			}).SignedString([]byte(testKey))
			if err != nil {
				t.Fatal(err)
			}
			if len(tok) <= size {
				if len(tok) < size-4 {
					t.Fatalf("padded token of %d characters for %d", len(tok), size)
				}
				return tok
			}
		}
		t.Fatalf("no token of %d characters", size)
		return ""
	}
	for _, tc := range []struct {
		limit, size int
		want        int
	}{
		{0, 4096, http.StatusOK}, // the default
		{0, 4097, http.StatusRequestEntityTooLarge},
		{1000, 1000, http.StatusOK},
		{1000, 1001, http.StatusRequestEntityTooLarge},
		{8192, 6000, http.StatusOK},
	} {
		ts := startServer(t, func(c *Config) {
			if tc.limit > 0 {
				c.MaxTokenSize = tc.limit
			}
		})
		limit := ts.s.limits().MaxTokenSize
		tok := strings.Repeat("a", tc.size) // refused before it is parsed
		if tc.want == http.StatusOK {
			tok = padded(auth.ClientAudience(ts.url, "chat"), tc.size)
		}
		resp := ts.do("POST", "/client/negotiate?hub=chat&negotiateVersion=1", tok, nil, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("limit %d, token of %d: negotiate %d %s, want %d", limit, len(tok), resp.StatusCode, body, tc.want)
		}
		if tc.want == http.StatusRequestEntityTooLarge {
			if want := "The access token is longer than " + strconv.Itoa(limit) + " characters."; string(body) != want {
				t.Errorf("limit %d: %q, want %q", limit, body, want)
			}
		}
		path := "/api/hubs/chat/:send"
		rtok := strings.Repeat("a", tc.size)
		if tc.want == http.StatusOK {
			rtok = padded(auth.RESTAudience(ts.url, path), tc.size)
		}
		resp = ts.do("POST", path, rtok, strings.NewReader(`{"target":"t","arguments":[]}`), map[string]string{"Content-Type": "application/json"})
		resp.Body.Close()
		if want := map[bool]int{true: http.StatusAccepted, false: http.StatusUnauthorized}[tc.want == http.StatusOK]; resp.StatusCode != want {
			t.Errorf("limit %d, token of %d: REST %d, want %d", limit, len(rtok), resp.StatusCode, want)
		}
	}
}
