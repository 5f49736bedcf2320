package restapi

import (
	"net/http"
	"strings"
	"testing"
)

// Regression (issue 7, found 5): the audience was decoded and compared ignoring case,
// so a token for user "a%2Fgroups%2Fadmins" added user "a" to group "admins", and a
// token for users/bob reached BOB.
func TestRESTAudienceIsExact(t *testing.T) {
	e := newEnv(t)
	e.connect("chat", "c1", "a", "json")
	e.connect("chat", "c2", "BOB", "json")
	p := "/api/hubs/chat/"
	r := e.do(http.MethodPut, p+"users/a/groups/admins", "", withToken(e.token(p+"users/a%2Fgroups%2Fadmins")))
	wantStatus(t, r, http.StatusUnauthorized)
	if e.reg.UserInGroup("chat", "a", "admins") {
		t.Fatal("user a was added to admins")
	}
	r = e.do(http.MethodPost, p+"users/BOB/:send", `{"target":"x"}`, withToken(e.token(p+"users/bob/:send")))
	wantStatus(t, r, http.StatusUnauthorized)
	r = e.do(http.MethodPost, "/api/hubs/Chat/:send", `{"target":"x"}`, withToken(e.token(p+":send")))
	wantStatus(t, r, http.StatusUnauthorized)
	// The token for the very path still works.
	wantStatus(t, e.do(http.MethodPost, p+"users/BOB/:send", `{"target":"x"}`), http.StatusAccepted)
}

// Regression (issue 7, found 6): REST answered 202 for messages no client could be sent:
// arguments nested 600 deep, or a number (1e400) MessagePack cannot carry.
func TestRESTRefusesUndeliverable(t *testing.T) {
	e := newEnv(t)
	json := e.connect("chat", "j", "u", "json")
	mp := e.connect("chat", "m", "u", "messagepack")
	p := "/api/hubs/chat/:send"
	deep := strings.Repeat("[", 600) + strings.Repeat("]", 600)
	cases := map[string]string{
		"nested 600":          `{"target":"x","arguments":[` + deep + `]}`,
		"1e400":               `{"target":"x","arguments":[1e400]}`,
		"nested over default": `{"target":"x","arguments":[` + strings.Repeat("[", DefaultMaxArgumentDepth+1) + strings.Repeat("]", DefaultMaxArgumentDepth+1) + `]}`,
	}
	for name, body := range cases {
		r := e.do(http.MethodPost, p, body)
		if r.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400; body %q", name, r.Code, r.Body.String())
		}
	}
	ok := `{"target":"x","arguments":[` + strings.Repeat("[", DefaultMaxArgumentDepth-1) + strings.Repeat("]", DefaultMaxArgumentDepth-1) + `, 1e300]}`
	wantStatus(t, e.do(http.MethodPost, p, ok), http.StatusAccepted)
	if len(json.Frames()) != 1 || len(mp.Frames()) != 1 {
		t.Fatalf("json got %d frames, messagepack %d; want the one accepted message each", len(json.Frames()), len(mp.Frames()))
	}
}

// The depth scan is skipped for arguments too short to nest deeper than the limit;
// at exactly the length that can, it still runs.
func TestDeliverableDepthAtTheShortcutsEdge(t *testing.T) {
	for _, tc := range []struct {
		arg string
		ok  bool
	}{
		{`[[[]]]`, true},          // depth 3, 6 bytes: skipped, and within the limit
		{`[[[[]]]]`, false},       // depth 4, 8 bytes = 2*(3+1): scanned and refused
		{`[[[1]]]`, true},         // depth 3, 7 bytes
		{`{"a":[[[]]]}`, false},   // depth 4
		{`"[[[[[[[[[["`, true},    // a string: depth 0 however long
		{`[1,[2,[3,4]],5]`, true}, // depth 3, 15 bytes: scanned
	} {
		inv, err := parseJSONPayload([]byte(`{"target":"t","arguments":[` + tc.arg + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		_, err = deliverable(inv, 3)
		if (err == nil) != tc.ok {
			t.Errorf("%s at depth limit 3: %v, want ok=%v", tc.arg, err, tc.ok)
		}
	}
}
