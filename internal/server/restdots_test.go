package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// Names are opaque to the REST API: "." and ".." are a group, a user or a connection
// like any other, not dot segments for the HTTP router to clean and redirect (which
// answered 307 to a send the client signed for that exact path).
func TestRESTNamesThatLookLikeDotSegments(t *testing.T) {
	ts := startServer(t, nil)
	wc, n := ts.connectWS("chat", "..", protocol.JSON())
	waitFor(t, 2*time.Second, "registration", func() bool { return ts.s.Registry().UserExists("chat", "..") })
	ts.s.Registry().AddToGroup("chat", ".", n.ConnectionID)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(p, target string) int {
		t.Helper()
		tok, err := auth.NewToken(testKey, auth.TokenOptions{Audience: ts.url + p + "?api-version=2022-06-01"})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", ts.url+p+"?api-version=2022-06-01", strings.NewReader(`{"target":"`+target+`"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := send("/api/hubs/chat/groups/"+url.PathEscape(".")+"/:send", "toGroup"); st != http.StatusAccepted {
		t.Fatalf("send to group \".\": %d", st)
	}
	if st := send("/api/hubs/chat/users/"+url.PathEscape("..")+"/:send", "toUser"); st != http.StatusAccepted {
		t.Fatalf("send to user \"..\": %d", st)
	}
	for _, want := range []string{"toGroup", "toUser"} {
		if target, _ := invocationText(t, wc.next(2*time.Second, false)); target != want {
			t.Fatalf("got %s, want %s", target, want)
		}
	}
}
