package management_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/internal/cluster"
	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
	"github.com/signalbox-io/signalbox/internal/restapi"
	"github.com/signalbox-io/signalbox/management"
	"github.com/signalbox-io/signalbox/protocol"
)

// newConn is a recorded JSON connection of hub chat.
func newConn(id, user string) *hubtest.Client {
	return hubtest.NewClient("chat", id, user, protocol.JSON())
}

// closedText is how a connection ended: "" or "closed: <reason>".
func closedText(c *hubtest.Client) string {
	if closed, reason := c.Closed(); closed {
		return "closed: " + reason
	}
	return ""
}

// clientFor serves api on loopback and returns a management client for it and its URL,
// both closed when the test ends.
func clientFor(t *testing.T, api http.Handler, key string) (*management.Client, string) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	eps, err := connection.FromMap(map[string]string{
		"AzureSignalRConnectionString": "Endpoint=" + srv.URL + ";AccessKey=" + key + ";Version=1.0;",
	}).Resolve("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := management.NewClient(eps, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, srv.URL
}

// TestAgainstSignalboxRESTAPI drives Signalbox's own REST handler (with its access-key
// validation) through the client.
func TestAgainstSignalboxRESTAPI(t *testing.T) {
	const key = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefgh"
	node, err := cluster.NewNode(context.Background(), cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := node.Registry()
	api := restapi.New(restapi.Options{
		Hubs:      node,
		Validator: &auth.Validator{Keys: []string{key}},
		IssueToken: func(hub, userID string, lifetime time.Duration) (string, error) {
			return auth.NewToken(key, auth.TokenOptions{Audience: "http://x/client/?hub=" + hub, UserID: userID, Lifetime: lifetime})
		},
	})
	c, srvURL := clientFor(t, api, key)
	ctx := context.Background()

	alice1 := newConn("a1", "alice")
	alice2 := newConn("a2", "alice")
	bob := newConn("b/1", "bob")
	dave := newConn("d1", "dave")
	for _, tc := range []*hubtest.Client{alice1, alice2, bob, dave} {
		reg.Add(tc)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const frame = `{"type":1,"target":"m","arguments":["x",1]}`
	args := []any{"x", 1}

	must(c.SendToAll(ctx, "Chat", "m", args, &management.SendOptions{Excluded: []string{"a2"}}))
	if got := [3]int{len(alice1.Take()), len(alice2.Take()), len(bob.Take())}; got != [3]int{1, 0, 1} || len(dave.Take()) != 1 {
		t.Errorf("send to all excluding a2: %v", got)
	}
	must(c.SendToUser(ctx, "chat", "alice", "m", args, nil))
	if f := alice2.Take(); len(f) != 1 || f[0] != frame {
		t.Errorf("send to user: %q", f)
	}
	alice1.Take()
	must(c.SendToConnection(ctx, "chat", "b/1", "m", args, nil))
	if f := bob.Take(); len(f) != 1 {
		t.Errorf("send to connection with '/' in id: %q", f)
	}

	must(c.AddConnectionToGroup(ctx, "chat", "room 1", "b/1", nil))
	must(c.AddConnectionToGroup(ctx, "chat", "room 1", "nobody", nil)) // tolerated 404
	must(c.AddUserToGroup(ctx, "chat", "room 1", "alice", nil))
	must(c.SendToGroup(ctx, "chat", "room 1", "m", args, &management.SendOptions{Excluded: []string{"a1"}}))
	if got := [3]int{len(alice1.Take()), len(alice2.Take()), len(bob.Take())}; got != [3]int{0, 1, 1} {
		t.Errorf("send to group: %v", got)
	}

	checks := []struct {
		name string
		fn   func() (bool, error)
		want bool
	}{
		{"connection exists", func() (bool, error) { return c.ConnectionExists(ctx, "chat", "b/1", nil) }, true},
		{"connection missing", func() (bool, error) { return c.ConnectionExists(ctx, "chat", "zz", nil) }, false},
		{"user exists", func() (bool, error) { return c.UserExists(ctx, "chat", "alice", nil) }, true},
		{"user missing", func() (bool, error) { return c.UserExists(ctx, "chat", "carol", nil) }, false},
		{"group exists", func() (bool, error) { return c.GroupExists(ctx, "chat", "room 1", nil) }, true},
		{"group missing", func() (bool, error) { return c.GroupExists(ctx, "chat", "room 2", nil) }, false},
		{"user in group", func() (bool, error) { return c.UserInGroup(ctx, "chat", "room 1", "alice", nil) }, true},
		{"user not in group", func() (bool, error) { return c.UserInGroup(ctx, "chat", "room 1", "dave", nil) }, false},
		{"unknown user not in group", func() (bool, error) { return c.UserInGroup(ctx, "chat", "room 1", "carol", nil) }, false},
	}
	for _, ck := range checks {
		if ok, err := ck.fn(); err != nil || ok != ck.want {
			t.Errorf("%s: %v, %v; want %v", ck.name, ok, err, ck.want)
		}
	}

	must(c.RemoveUserFromGroup(ctx, "chat", "room 1", "alice", nil))
	must(c.RemoveConnectionFromGroup(ctx, "chat", "room 1", "b/1", nil))
	if ok, err := c.GroupExists(ctx, "chat", "room 1", nil); ok || err != nil {
		t.Errorf("group after removals: %v, %v", ok, err)
	}

	acc, err := c.GenerateClientToken(ctx, "chat", &management.GenerateClientTokenOptions{UserID: "alice"})
	if err != nil {
		t.Fatalf("GenerateClientToken: %v", err)
	}
	if p, err := (&auth.Validator{Keys: []string{key}}).ValidateClient(acc.AccessToken, "chat"); err != nil || p.UserID != "alice" {
		t.Errorf("generated token: %v, %v", p, err)
	}

	must(c.CloseConnection(ctx, "chat", "b/1", &management.CloseOptions{Reason: "bye"}))
	must(c.CloseConnection(ctx, "chat", "b/1", nil)) // already gone: tolerated
	must(c.CloseUserConnections(ctx, "chat", "alice", &management.CloseOptions{Excluded: []string{"a2"}, Reason: "r"}))
	if closedText(bob) != "closed: bye" || closedText(alice1) != "closed: r" || closedText(alice2) != "" {
		t.Errorf("closed: bob %q, a1 %q, a2 %q", closedText(bob), closedText(alice1), closedText(alice2))
	}

	// Health is anonymous and answers HEAD.
	req, _ := http.NewRequest(http.MethodHead, srvURL+"/api/health?api-version=2022-06-01", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("health: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
}

// TestGroupLimitAgainstSignalbox: a group add beyond the service's limit of groups per
// connection (or memberships per user) comes back as ErrTooManyGroups, with the code
// saying which, and is not retried.
func TestGroupLimitAgainstSignalbox(t *testing.T) {
	const key = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefgh"
	node, err := cluster.NewNode(context.Background(), cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	node.SetMaxGroups(2)
	node.Registry().Add(newConn("c1", "ann"))
	api := restapi.New(restapi.Options{Hubs: node, Validator: &auth.Validator{Keys: []string{key}}})
	c, _ := clientFor(t, api, key)
	ctx := context.Background()
	for _, g := range []string{"g1", "g2", "g2"} { // the same group again adds nothing
		if err := c.AddConnectionToGroup(ctx, "chat", g, "c1", nil); err != nil {
			t.Fatalf("add to %s: %v", g, err)
		}
	}
	err = c.AddConnectionToGroup(ctx, "chat", "g3", "c1", nil)
	var re *management.ResponseError
	if !errors.Is(err, management.ErrTooManyGroups) || !errors.As(err, &re) ||
		re.StatusCode != http.StatusConflict || re.ErrorCode != management.CodeConnectionTooManyGroups {
		t.Fatalf("third group: %v, want ErrTooManyGroups (409 %s)", err, management.CodeConnectionTooManyGroups)
	}
	if ok, err := c.UserInGroup(ctx, "chat", "g3", "ann", nil); ok || err != nil {
		t.Fatalf("the refused add took effect: %v %v", ok, err)
	}
	for _, g := range []string{"u1", "u2"} {
		if err := c.AddUserToGroup(ctx, "chat", g, "bob", nil); err != nil {
			t.Fatalf("add user to %s: %v", g, err)
		}
	}
	err = c.AddUserToGroup(ctx, "chat", "u3", "bob", nil)
	if !errors.Is(err, management.ErrTooManyGroups) || !errors.As(err, &re) || re.ErrorCode != management.CodeUserTooManyGroups {
		t.Fatalf("third user group: %v, want ErrTooManyGroups (%s)", err, management.CodeUserTooManyGroups)
	}
	if err := c.AddConnectionToGroup(ctx, "chat", "g1", "nobody", nil); err != nil {
		t.Fatalf("an unknown connection is still tolerated: %v", err)
	}
}
