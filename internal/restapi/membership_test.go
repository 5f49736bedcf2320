package restapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
)

func TestExistenceChecks(t *testing.T) {
	for _, st := range styles {
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			t.Run(st.name+"/"+method, func(t *testing.T) {
				e := newEnv(t)
				e.connect("chat", "c1", "alice", "json")
				e.connect("chat", "c2", "bob", "json")
				e.reg.AddToGroup("chat", "g", "c2")
				p := st.prefix + "chat/"
				wantStatus(t, e.do(method, p+"connections/c1", ""), http.StatusOK)
				wantNotFound(t, e.do(method, p+"connections/nope", ""), CodeConnectionNotExisted)
				wantStatus(t, e.do(method, p+"users/alice", ""), http.StatusOK)
				wantNotFound(t, e.do(method, p+"users/nobody", ""), CodeUserNotExisted)
				wantStatus(t, e.do(method, p+"groups/g", ""), http.StatusOK)
				wantNotFound(t, e.do(method, p+"groups/G", ""), CodeGroupNotExisted) // case-sensitive
				// user-in-group in both shapes under both prefixes
				wantStatus(t, e.do(method, p+"users/bob/groups/g", ""), http.StatusOK)
				wantStatus(t, e.do(method, p+"groups/g/users/bob", ""), http.StatusOK)
				wantNotFound(t, e.do(method, p+"users/alice/groups/g", ""), CodeUserNotInGroup)
				wantNotFound(t, e.do(method, p+"groups/g/users/alice", ""), CodeUserNotInGroup)

				w := e.do(method, p+"users/nobody", "")
				if method == http.MethodHead && w.Body.Len() != 0 {
					t.Errorf("HEAD 404 has a body %q", w.Body.String())
				}
				if method == http.MethodGet && !json404(w.Body.String(), CodeUserNotExisted) {
					t.Errorf("GET 404 body %q lacks the error code", w.Body.String())
				}
			})
		}
	}
}

func json404(body, code string) bool { return strings.Contains(body, `"code":"`+code+`"`) }

func TestConnectionGroupOperations(t *testing.T) {
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			e.connect("chat", "c1", "alice", "json")
			p := st.prefix + "chat/"
			wantStatus(t, e.do(http.MethodPut, p+"groups/g1/connections/c1", ""), http.StatusOK)
			wantStatus(t, e.do(http.MethodPut, p+"groups/g2/connections/c1", ""), http.StatusOK)
			wantNotFound(t, e.do(http.MethodPut, p+"groups/g1/connections/nope", ""), CodeConnectionNotExistedError)
			if !e.reg.GroupExists("chat", "g1") || !e.reg.GroupExists("chat", "g2") {
				t.Fatal("PUT did not add the connection")
			}
			wantStatus(t, e.do(http.MethodDelete, p+"groups/g1/connections/c1", ""), http.StatusOK)
			wantStatus(t, e.do(http.MethodDelete, p+"groups/g1/connections/gone", ""), http.StatusOK) // idempotent
			if e.reg.GroupExists("chat", "g1") {
				t.Fatal("DELETE did not remove the connection")
			}
			wantStatus(t, e.do(http.MethodDelete, p+"connections/c1/groups", ""), http.StatusOK)
			if e.reg.GroupExists("chat", "g2") {
				t.Fatal("leave-all did not remove the connection")
			}
		})
	}
}

func TestUserGroupTTLSemantics(t *testing.T) {
	e := newEnv(t)
	a1 := e.connect("chat", "a1", "alice", "json")
	p := "/api/hubs/chat/users/alice/groups/"

	wantStatus(t, e.do(http.MethodPut, p+"forever", ""), http.StatusOK)
	wantStatus(t, e.do(http.MethodPut, p+"now?ttl=0", ""), http.StatusOK)
	wantStatus(t, e.do(http.MethodPut, p+"brief?ttl=60", ""), http.StatusOK)
	for _, bad := range []string{"-1", "x", "1.5", "", "99999999999"} {
		wantStatus(t, e.do(http.MethodPut, p+"bad?ttl="+bad, ""), http.StatusBadRequest)
	}
	a2 := e.connect("chat", "a2", "alice", "json") // a future connection

	groupOf := func(g string) []string {
		var ids []string
		for _, c := range e.reg.GroupConnections("chat", g) {
			ids = append(ids, c.ConnectionID)
		}
		return ids
	}
	if got := groupOf("forever"); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("no-ttl group = %v, want current and future connections", got)
	}
	if got := groupOf("now"); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("ttl=0 group = %v, want only the connection current at the call", got)
	}
	if got := groupOf("brief"); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("ttl=60 group = %v", got)
	}
	if groupOf("bad") != nil {
		t.Error("a rejected ttl changed membership")
	}

	e.clock.Advance(61 * time.Second)
	wantNotFound(t, e.do(http.MethodGet, p+"brief", ""), CodeUserNotInGroup)
	wantStatus(t, e.do(http.MethodPost, "/api/hubs/chat/groups/brief/:send", `{"target":"late"}`), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodGet, p+"forever", ""), http.StatusOK)
	e.connect("chat", "a3", "alice", "json")
	if got := groupOf("forever"); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Errorf("no-ttl group after expiry of another = %v", got)
	}
	for _, c := range []*hubtest.Client{a1, a2} {
		if n := len(c.Frames()); n != 0 {
			t.Errorf("%s received %d frames from an expired group", c.ID(), n)
		}
	}

	e.clock.Advance(366 * 24 * time.Hour)
	wantNotFound(t, e.do(http.MethodHead, p+"forever", ""), CodeUserNotInGroup)

	wantStatus(t, e.do(http.MethodPut, p+"x", ""), http.StatusOK)
	wantStatus(t, e.do(http.MethodPut, p+"y", ""), http.StatusOK)
	wantStatus(t, e.do(http.MethodDelete, p+"x", ""), http.StatusNoContent)
	wantNotFound(t, e.do(http.MethodGet, p+"x", ""), CodeUserNotInGroup)
	wantStatus(t, e.do(http.MethodDelete, "/api/hubs/chat/users/alice/groups", ""), http.StatusNoContent)
	wantNotFound(t, e.do(http.MethodGet, p+"y", ""), CodeUserNotInGroup)
	e.connect("chat", "a4", "alice", "json")
	if e.reg.GroupExists("chat", "y") || e.reg.GroupExists("chat", "now") {
		t.Error("removed memberships still applied")
	}
}

func TestLegacyUserGroupShapes(t *testing.T) {
	e := newEnv(t)
	e.connect("chat", "b1", "bob", "json")
	p := "/api/v1/hubs/chat/"
	wantStatus(t, e.do(http.MethodPut, p+"groups/ug/users/bob", ""), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodPut, p+"groups/ug0/users/bob?ttl=0", ""), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodHead, p+"groups/ug/users/bob", ""), http.StatusOK)
	b2 := e.connect("chat", "b2", "bob", "json")
	wantStatus(t, e.do(http.MethodPost, p+"groups/ug", `{"target":"hi"}`), http.StatusAccepted)
	if got := b2.Targets(t); !slices.Equal(got, []string{"hi"}) {
		t.Errorf("future connection got %q", got)
	}
	if len(e.reg.GroupConnections("chat", "ug0")) != 1 {
		t.Error("legacy ttl=0 should add only the current connection")
	}
	wantStatus(t, e.do(http.MethodDelete, p+"groups/ug/users/bob", ""), http.StatusAccepted)
	wantNotFound(t, e.do(http.MethodGet, p+"groups/ug/users/bob", ""), CodeUserNotInGroup)
	wantStatus(t, e.do(http.MethodDelete, p+"users/bob/groups", ""), http.StatusOK)
	if e.reg.GroupExists("chat", "ug0") {
		t.Error("legacy leave-all kept a group")
	}
}

func TestCloseOperations(t *testing.T) {
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			mk := func(id, user string) *hubtest.Client { return e.connect("chat", id, user, "json") }
			a1, a2, b1, b2, n, x := mk("a1", "a"), mk("a2", "a"), mk("b1", "b"), mk("b2", "b"), mk("n", ""), mk("x", "")
			e.reg.AddToGroup("chat", "g", "b1")
			e.reg.AddToGroup("chat", "g", "b2")
			p := st.prefix + "chat/"

			wantClose := st.name == "legacy"
			status := http.StatusOK
			if wantClose {
				status = http.StatusAccepted
			}
			wantStatus(t, e.do(http.MethodDelete, p+"connections/x?reason=bye", ""), status)
			if closed, reason := x.Closed(); !closed || reason != "bye" {
				t.Fatalf("x closed=%v reason=%q", closed, reason)
			}
			wantNotFound(t, e.do(http.MethodDelete, p+"connections/x", ""), CodeConnectionNotExisted)

			wantStatus(t, e.do(http.MethodPost, p+"users/a/:closeConnections?excluded=a2&reason=user", ""), http.StatusNoContent)
			wantStatus(t, e.do(http.MethodPost, p+"groups/g/:closeConnections?excluded=b1&reason=group", ""), http.StatusNoContent)
			checks := []struct {
				c      *hubtest.Client
				closed bool
				reason string
			}{{a1, true, "user"}, {a2, false, ""}, {b1, false, ""}, {b2, true, "group"}, {n, false, ""}}
			for _, ck := range checks {
				if closed, reason := ck.c.Closed(); closed != ck.closed || reason != ck.reason {
					t.Errorf("%s closed=%v reason=%q, want %v %q", ck.c.ID(), closed, reason, ck.closed, ck.reason)
				}
			}
			wantStatus(t, e.do(http.MethodPost, p+":closeConnections?excluded=n&excluded=b1&reason=all", ""), http.StatusNoContent)
			if closed, reason := a2.Closed(); !closed || reason != "all" {
				t.Errorf("a2 closed=%v reason=%q", closed, reason)
			}
			for _, c := range []*hubtest.Client{n, b1} {
				if closed, _ := c.Closed(); closed {
					t.Errorf("excluded %s closed", c.ID())
				}
			}
			if got := e.reg.ConnectionCount("chat"); got != 2 {
				t.Errorf("%d connections left, want 2", got)
			}
		})
	}
}
