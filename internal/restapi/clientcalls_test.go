package restapi

import (
	"net/http/httptest"
	"testing"
)

func TestClientCallTarget(t *testing.T) {
	for _, tc := range []struct {
		target, hub, conn string
		ok                bool
	}{
		{"/api/hubs/Chat/connections/c1/:invoke", "chat", "c1", true},
		{"/api/v1/hubs/chat/connections/a%2Fb/:invoke?application=App", "app_chat", "a/b", true},
		{"/API/hubs/chat/connections/c1/streams/0/:send", "chat", "c1", true},
		{"/api/hubs/chat/connections/c1/streams/0/:complete/", "chat", "c1", true},
		{"/api/hubs/chat/connections/c1/:send", "", "", false},
		{"/api/hubs/chat/connections/c1", "", "", false},
		{"/api/hubs/chat/connections/c1/streams/0/:cancel", "", "", false},
		{"/api/hubs/9bad/connections/c1/:invoke", "", "", false},
		{"/api/hubs/chat/connections//:invoke", "", "", false},
		{"/api/hubs/chat/groups/g/:invoke", "", "", false},
		{"/client/hubs/chat/connections/c1/:invoke", "", "", false},
	} {
		h, c, ok := ClientCallTarget(httptest.NewRequest("POST", "http://x"+tc.target, nil))
		if h != tc.hub || c != tc.conn || ok != tc.ok {
			t.Errorf("%s = %q %q %v, want %q %q %v", tc.target, h, c, ok, tc.hub, tc.conn, tc.ok)
		}
	}
}

func TestIsExecute(t *testing.T) {
	for target, want := range map[string]bool{
		"/api/hubs/chat/:execute":         true,
		"/api/v1/hubs/chat/:execute/":     true,
		"/API/HUBS/chat/:EXECUTE":         true,
		"/api/hubs/chat/:send":            false,
		"/api/hubs/chat/groups/:execute":  false,
		"/api/hubs/:execute":              false,
		"/client/hubs/chat/:execute/more": false,
	} {
		if got := IsExecute(httptest.NewRequest("POST", "http://x"+target, nil)); got != want {
			t.Errorf("IsExecute(%s) = %v", target, got)
		}
	}
	if IsExecute(httptest.NewRequest("GET", "http://x/api/hubs/chat/:execute", nil)) {
		t.Error("GET counted as :execute")
	}
}
