package management

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/connection"
)

const testKey = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefgh"

func newTestClient(t *testing.T, opts *ClientOptions, eps ...connection.Endpoint) *Client {
	t.Helper()
	c, err := NewClient(eps, opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOperations(t *testing.T) {
	f := newFakeService(t, testKey)
	c := newTestClient(t, nil, f.endpoint("", connection.Primary))
	ctx := context.Background()
	ttl := 90 * time.Second
	zero := time.Duration(0)
	const msg = `{"Target":"newMessage","Arguments":["hi",1]}`
	args := []any{"hi", 1}
	tests := []struct {
		name        string
		do          func() error
		method      string
		path, query string
		body        string
	}{
		{"send to all", func() error { return c.SendToAll(ctx, "Chat", "newMessage", args, nil) },
			"POST", "/api/hubs/chat/:send", "api-version=2022-06-01", msg},
		{"send to all excluded", func() error {
			return c.SendToAll(ctx, "chat", "newMessage", args, &SendOptions{Excluded: []string{"c1", "c 2"}})
		}, "POST", "/api/hubs/chat/:send", "api-version=2022-06-01&excluded=c1&excluded=c+2", msg},
		{"send to user", func() error { return c.SendToUser(ctx, "chat", "a/b c", "newMessage", args, nil) },
			"POST", "/api/hubs/chat/users/a%2Fb%20c/:send", "api-version=2022-06-01", msg},
		{"send to group", func() error {
			return c.SendToGroup(ctx, "chat", "g?1", "newMessage", args, &SendOptions{Excluded: []string{"x"}})
		}, "POST", "/api/hubs/chat/groups/g%3F1/:send", "api-version=2022-06-01&excluded=x", msg},
		{"send to connection", func() error {
			return c.SendToConnection(ctx, "chat", "conn1", "newMessage", args, &SendOptions{Excluded: []string{"ignored"}})
		}, "POST", "/api/hubs/chat/connections/conn1/:send", "api-version=2022-06-01", msg},
		{"add connection to group", func() error { return c.AddConnectionToGroup(ctx, "chat", "g", "conn1", nil) },
			"PUT", "/api/hubs/chat/groups/g/connections/conn1", "api-version=2022-06-01", ""},
		{"remove connection from group", func() error { return c.RemoveConnectionFromGroup(ctx, "chat", "g", "conn1", nil) },
			"DELETE", "/api/hubs/chat/groups/g/connections/conn1", "api-version=2022-06-01", ""},
		{"remove connection from all groups", func() error { return c.RemoveConnectionFromAllGroups(ctx, "chat", "conn1", nil) },
			"DELETE", "/api/hubs/chat/connections/conn1/groups", "api-version=2022-06-01", ""},
		{"add user to group", func() error { return c.AddUserToGroup(ctx, "chat", "g", "u1", nil) },
			"PUT", "/api/hubs/chat/users/u1/groups/g", "api-version=2022-06-01", ""},
		{"add user to group ttl", func() error { return c.AddUserToGroup(ctx, "chat", "g", "u1", &AddUserToGroupOptions{TTL: &ttl}) },
			"PUT", "/api/hubs/chat/users/u1/groups/g", "api-version=2022-06-01&ttl=90", ""},
		{"add user to group ttl 0", func() error { return c.AddUserToGroup(ctx, "chat", "g", "u1", &AddUserToGroupOptions{TTL: &zero}) },
			"PUT", "/api/hubs/chat/users/u1/groups/g", "api-version=2022-06-01&ttl=0", ""},
		{"remove user from group", func() error { return c.RemoveUserFromGroup(ctx, "chat", "g", "u1", nil) },
			"DELETE", "/api/hubs/chat/users/u1/groups/g", "api-version=2022-06-01", ""},
		{"remove user from all groups", func() error { return c.RemoveUserFromAllGroups(ctx, "chat", "u1", nil) },
			"DELETE", "/api/hubs/chat/users/u1/groups", "api-version=2022-06-01", ""},
		{"close connection", func() error { return c.CloseConnection(ctx, "chat", "conn1", &CloseOptions{Reason: "bye now"}) },
			"DELETE", "/api/hubs/chat/connections/conn1", "api-version=2022-06-01&reason=bye+now", ""},
		{"close all", func() error {
			return c.CloseAllConnections(ctx, "chat", &CloseOptions{Excluded: []string{"a", "b"}, Reason: "r"})
		}, "POST", "/api/hubs/chat/:closeConnections", "api-version=2022-06-01&excluded=a&excluded=b&reason=r", ""},
		{"close group", func() error { return c.CloseGroupConnections(ctx, "chat", "g", nil) },
			"POST", "/api/hubs/chat/groups/g/:closeConnections", "api-version=2022-06-01", ""},
		{"close user", func() error { return c.CloseUserConnections(ctx, "chat", "u1", &CloseOptions{Reason: "x"}) },
			"POST", "/api/hubs/chat/users/u1/:closeConnections", "api-version=2022-06-01&reason=x", ""},
		{"connection exists", func() error { return boolErr(c.ConnectionExists(ctx, "chat", "conn1", nil)) },
			"HEAD", "/api/hubs/chat/connections/conn1", "api-version=2022-06-01", ""},
		{"user exists", func() error { return boolErr(c.UserExists(ctx, "chat", "u1", nil)) },
			"HEAD", "/api/hubs/chat/users/u1", "api-version=2022-06-01", ""},
		{"group exists", func() error { return boolErr(c.GroupExists(ctx, "chat", "g", nil)) },
			"HEAD", "/api/hubs/chat/groups/g", "api-version=2022-06-01", ""},
		{"user in group", func() error { return boolErr(c.UserInGroup(ctx, "chat", "g", "u1", nil)) },
			"GET", "/api/hubs/chat/users/u1/groups/g", "api-version=2022-06-01", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.reset()
			if err := tt.do(); err != nil {
				t.Fatalf("error: %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.Path != tt.path || r.Query != tt.query {
				t.Errorf("got %s %s?%s\nwant %s %s?%s", r.Method, r.Path, r.Query, tt.method, tt.path, tt.query)
			}
			if r.Body != tt.body {
				t.Errorf("body %q, want %q", r.Body, tt.body)
			}
			if tt.body != "" && r.ContentType != "application/json; charset=utf-8" {
				t.Errorf("content type %q", r.ContentType)
			}
			wantAud := "http://127.0.0.1" + tt.path + "?api-version=2022-06-01"
			if aud := r.Claims["aud"]; aud != wantAud {
				t.Errorf("aud %v, want %v", aud, wantAud)
			}
			if id, _ := r.Claims["nameid"].(string); !strings.Contains(id, "_") {
				t.Errorf("nameid claim %q", id)
			}
			exp, _ := r.Claims["exp"].(float64)
			if d := time.Until(time.Unix(int64(exp), 0)); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("token lifetime %v, want 1h", d)
			}
		})
	}
}

func boolErr(ok bool, err error) error {
	if err == nil && !ok {
		return errors.New("check returned false for a 200")
	}
	return err
}

func TestArguments(t *testing.T) {
	f := newFakeService(t, testKey)
	c := newTestClient(t, nil, f.endpoint("", connection.Primary))
	ctx := context.Background()
	tests := []struct {
		args any
		want string
	}{
		{nil, `[]`},
		{[]any{}, `[]`},
		{[]any(nil), `[]`},
		{[]any{"a", 1.5, map[string]int{"b": 2}, nil}, `["a",1.5,{"b":2},null]`},
		{[]string{"x", "y"}, `["x","y"]`},
		{[2]int{1, 2}, `[1,2]`},
		{json.RawMessage(` [ {"a" : 1} ] `), `[{"a":1}]`},
		{[]byte(`["raw"]`), `["raw"]`},
		{[]json.RawMessage{json.RawMessage(`{"x":true}`), json.RawMessage(`2`)}, `[{"x":true},2]`},
	}
	for _, tt := range tests {
		f.reset()
		if err := c.SendToAll(ctx, "chat", "t", tt.args, nil); err != nil {
			t.Errorf("%#v: %v", tt.args, err)
			continue
		}
		var body struct {
			Target    string
			Arguments json.RawMessage
		}
		if err := json.Unmarshal([]byte(f.requests()[0].Body), &body); err != nil {
			t.Fatal(err)
		}
		var got, want any
		_ = json.Unmarshal(body.Arguments, &got)
		_ = json.Unmarshal([]byte(tt.want), &want)
		if gb, _ := json.Marshal(got); string(gb) != mustJSON(want) || body.Target != "t" {
			t.Errorf("%#v: arguments %s, want %s", tt.args, body.Arguments, tt.want)
		}
	}
	for _, bad := range []any{"text", 42, json.RawMessage(`{"a":1}`), json.RawMessage(`[1,`), []byte(``), []any{func() {}}} {
		f.reset()
		if err := c.SendToAll(ctx, "chat", "t", bad, nil); err == nil {
			t.Errorf("%#v: no error", bad)
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("%#v: %d requests sent", bad, n)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestInvalidInput(t *testing.T) {
	f := newFakeService(t, testKey)
	c := newTestClient(t, nil, f.endpoint("", connection.Primary))
	ctx := context.Background()
	neg := -time.Second
	for name, err := range map[string]error{
		"empty hub":        c.SendToAll(ctx, "", "t", nil, nil),
		"empty target":     c.SendToAll(ctx, "chat", "", nil, nil),
		"negative ttl":     c.AddUserToGroup(ctx, "chat", "g", "u", &AddUserToGroupOptions{TTL: &neg}),
		"close empty user": c.CloseUserConnections(ctx, "chat", "", nil),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	exists := func(_ bool, err error) error { return err }
	// Every caller-supplied path segment is checked, and the error names it.
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"send to user", "user id is empty", c.SendToUser(ctx, "chat", "", "t", nil, nil)},
		{"send to group", "group name is empty", c.SendToGroup(ctx, "chat", "", "t", nil, nil)},
		{"send to connection", "connection id is empty", c.SendToConnection(ctx, "chat", "", "t", nil, nil)},
		{"add connection, group", "group name is empty", c.AddConnectionToGroup(ctx, "chat", "", "c", nil)},
		{"add connection, connection", "connection id is empty", c.AddConnectionToGroup(ctx, "chat", "g", "", nil)},
		{"remove connection", "connection id is empty", c.RemoveConnectionFromGroup(ctx, "chat", "g", "", nil)},
		{"remove connection from all", "connection id is empty", c.RemoveConnectionFromAllGroups(ctx, "chat", "", nil)},
		{"add user, user", "user id is empty", c.AddUserToGroup(ctx, "chat", "g", "", nil)},
		{"add user, group", "group name is empty", c.AddUserToGroup(ctx, "chat", "", "u", nil)},
		{"remove user", "group name is empty", c.RemoveUserFromGroup(ctx, "chat", "", "u", nil)},
		{"remove user from all", "user id is empty", c.RemoveUserFromAllGroups(ctx, "chat", "", nil)},
		{"close connection", "connection id is empty", c.CloseConnection(ctx, "chat", "", nil)},
		{"close group", "group name is empty", c.CloseGroupConnections(ctx, "chat", "", nil)},
		{"connection exists", "connection id is empty", exists(c.ConnectionExists(ctx, "chat", "", nil))},
		{"user exists", "user id is empty", exists(c.UserExists(ctx, "chat", "", nil))},
		{"group exists", "group name is empty", exists(c.GroupExists(ctx, "chat", "", nil))},
		{"user in group", "user id is empty", exists(c.UserInGroup(ctx, "chat", "g", "", nil))},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, tc.err, tc.want)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent for invalid input", n)
	}
}

func TestNotFoundTolerance(t *testing.T) {
	f := newFakeService(t, testKey)
	c := newTestClient(t, nil, f.endpoint("", connection.Primary))
	ctx := context.Background()
	check := func(fn func(context.Context, string, string, *ExistsOptions) (bool, error)) func() (bool, error) {
		return func() (bool, error) { return fn(ctx, "chat", "x", nil) }
	}
	act := func(fn func() error) func() (bool, error) { return func() (bool, error) { return true, fn() } }
	tests := []struct {
		name    string
		code    string // x-ms-error-code of the 404; "" = bare 404
		op      func() (bool, error)
		wantOK  bool
		wantErr bool
	}{
		{"connection exists: not existed", CodeConnectionNotExisted, check(c.ConnectionExists), false, false},
		{"connection exists: bare 404", "", check(c.ConnectionExists), false, true},
		{"connection exists: other code", CodeUserNotExisted, check(c.ConnectionExists), false, true},
		{"user exists: not existed", CodeUserNotExisted, check(c.UserExists), false, false},
		{"user exists: bare 404", "", check(c.UserExists), false, true},
		{"group exists: not existed", CodeGroupNotExisted, check(c.GroupExists), false, false},
		{"group exists: bare 404", "", check(c.GroupExists), false, true},
		{"user in group: not in group", CodeUserNotInGroup, func() (bool, error) { return c.UserInGroup(ctx, "chat", "g", "u", nil) }, false, false},
		{"user in group: bare 404", "", func() (bool, error) { return c.UserInGroup(ctx, "chat", "g", "u", nil) }, false, true},
		{"add to group: connection not existed", CodeConnectionNotExistedError, act(func() error { return c.AddConnectionToGroup(ctx, "chat", "g", "c", nil) }), true, false},
		{"add to group: bare 404", "", act(func() error { return c.AddConnectionToGroup(ctx, "chat", "g", "c", nil) }), true, true},
		{"close connection: not existed", CodeConnectionNotExisted, act(func() error { return c.CloseConnection(ctx, "chat", "c", nil) }), true, false},
		{"close connection: bare 404", "", act(func() error { return c.CloseConnection(ctx, "chat", "c", nil) }), true, true},
		{"send to all: 404 with code", CodeConnectionNotExisted, act(func() error { return c.SendToAll(ctx, "chat", "t", nil, nil) }), true, true},
		{"add user to group: 404 with code", CodeUserNotExisted, act(func() error { return c.AddUserToGroup(ctx, "chat", "g", "u", nil) }), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.setRespond(func(w http.ResponseWriter, r *http.Request) {
				if tt.code != "" {
					w.Header().Set("x-ms-error-code", tt.code)
				}
				w.WriteHeader(http.StatusNotFound)
			})
			ok, err := tt.op()
			if tt.wantErr {
				var re *ResponseError
				if !errors.As(err, &re) || re.StatusCode != 404 || re.ErrorCode != tt.code {
					t.Fatalf("error %v, want a 404 ResponseError with code %q", err, tt.code)
				}
				return
			}
			if err != nil || ok != tt.wantOK {
				t.Errorf("got %v, %v; want %v, nil", ok, err, tt.wantOK)
			}
		})
	}
}

func TestResponseError(t *testing.T) {
	f := newFakeService(t, testKey)
	c := newTestClient(t, nil, f.endpoint("", connection.Primary))
	f.setRespond(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-ms-error-code", "Error.Bad")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"code":"Error.Bad","message":"bad target"}`))
	})
	err := c.SendToAll(context.Background(), "chat", "t", nil, nil)
	var re *ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a *ResponseError", err)
	}
	if re.StatusCode != 400 || re.ErrorCode != "Error.Bad" || !strings.Contains(re.Message, "bad target") ||
		re.Method != "POST" || !strings.HasSuffix(re.URL, "/api/hubs/chat/:send") {
		t.Errorf("ResponseError %+v", re)
	}

	// A wrong key is answered with 401 by the fake service.
	bad := f.endpoint("", connection.Primary)
	bad.AccessKey = "wrong-key-wrong-key-wrong-key-wrong-key-1234"
	c2 := newTestClient(t, nil, bad)
	f.setRespond(nil)
	err = c2.SendToAll(context.Background(), "chat", "t", nil, nil)
	f.reset() // the fake recorded the auth failure on purpose
	if !errors.As(err, &re) || re.StatusCode != 401 || !strings.Contains(re.Message, "Authorization failed") {
		t.Errorf("401: %v", err)
	}
	if strings.Contains(err.Error(), bad.AccessKey) {
		t.Error("error leaks the access key")
	}
}
