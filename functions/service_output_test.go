package functions

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/management"
)

func TestSendAndApplyREST(t *testing.T) {
	f := newFakeService(t)
	s := newTestService(t, f)
	ctx := context.Background()
	cases := []struct {
		name string
		item any
		want string // "METHOD path" prefix of the one call
		err  error
	}{
		{"broadcast", Message{Target: "newMessage", Arguments: []any{"hi"}}, "POST /api/hubs/chat/:send", nil},
		{"connection wins", Message{Target: "t", ConnectionID: "c1", UserID: "u", GroupName: "g"}, "POST /api/hubs/chat/connections/c1/:send", nil},
		{"user beats group", Message{Target: "t", UserID: "u1", GroupName: "g"}, "POST /api/hubs/chat/users/u1/:send", nil},
		{"group", Message{Target: "t", GroupName: "g1"}, "POST /api/hubs/chat/groups/g1/:send", nil},
		{"add connection", GroupAction{Action: GroupAdd, ConnectionID: "c1", GroupName: "g1"}, "PUT /api/hubs/chat/groups/g1/connections/c1", nil},
		{"remove connection", GroupAction{Action: GroupRemove, ConnectionID: "c1", GroupName: "g1"}, "DELETE /api/hubs/chat/groups/g1/connections/c1", nil},
		{"removeAll connection ignored", GroupAction{Action: GroupRemoveAll, ConnectionID: "c1"}, "", nil},
		{"add user", GroupAction{Action: GroupAdd, UserID: "u1", GroupName: "g1"}, "PUT /api/hubs/chat/users/u1/groups/g1", nil},
		{"remove user", GroupAction{Action: GroupRemove, UserID: "u1", GroupName: "g1"}, "DELETE /api/hubs/chat/users/u1/groups/g1", nil},
		{"removeAll user", GroupAction{Action: GroupRemoveAll, UserID: "u1"}, "DELETE /api/hubs/chat/users/u1/groups", nil},
		{"no group", GroupAction{Action: GroupAdd, UserID: "u1"}, "", ErrNoGroupName},
		{"no ids", GroupAction{Action: GroupAdd, GroupName: "g"}, "", ErrNoConnectionOrUser},
		{"no target", Message{}, "", ErrNoTarget},
		{"JSON item", json.RawMessage(`{"target":"t","groupName":"g2","arguments":[1]}`), "POST /api/hubs/chat/groups/g2/:send", nil},
		{"bad JSON item", json.RawMessage(`{"groupName":"g2"}`), "", ErrUnknownItem},
		{"unsupported", 42, "", ErrUnsupportedItem},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Output(ctx, "chat", tc.item)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			calls := f.takeCalls()
			if tc.want == "" {
				if len(calls) != 0 {
					t.Fatalf("calls = %q, want none", calls)
				}
				return
			}
			if len(calls) != 1 || !strings.HasPrefix(calls[0], tc.want) {
				t.Fatalf("calls = %q, want one %q", calls, tc.want)
			}
		})
	}
	if err := s.Send(ctx, "chat", Message{Target: "newMessage", Arguments: []any{"hi", 2}}); err != nil {
		t.Fatal(err)
	}
	calls := f.takeCalls()
	if len(calls) != 1 || !strings.Contains(calls[0], `"Target":"newMessage"`) || !strings.Contains(calls[0], `["hi",2]`) {
		t.Fatalf("body = %q", calls)
	}
	// A batch runs in order and stops at the first invalid item.
	err := s.Output(ctx, "chat", Message{Target: "a"}, GroupAction{Action: GroupAdd, UserID: "u"}, Message{Target: "b"})
	if !errors.Is(err, ErrNoGroupName) || !strings.Contains(err.Error(), "item 1") {
		t.Fatalf("err = %v", err)
	}
	if calls := f.takeCalls(); len(calls) != 1 {
		t.Fatalf("calls = %q, want only the first item", calls)
	}
}

func TestMultiEndpointFanOut(t *testing.T) {
	s, east, west := twoEndpointService(t)
	ctx := context.Background()
	if err := s.Send(ctx, "chat", Message{Target: "t"}); err != nil {
		t.Fatal(err)
	}
	if len(east.takeCalls()) != 1 || len(west.takeCalls()) != 1 {
		t.Fatal("a message must reach every endpoint")
	}
	eps := s.Endpoints()
	if len(eps) != 2 {
		t.Fatalf("endpoints = %+v", eps)
	}
	var westInfo EndpointInfo
	for _, e := range eps {
		if e.Name == "west" {
			westInfo = e
		}
	}
	if westInfo.EndpointType != "Secondary" || westInfo.Endpoint != west.URL {
		t.Fatalf("west = %+v", westInfo)
	}
	if err := s.Apply(ctx, "chat", GroupAction{Action: GroupAdd, UserID: "u", GroupName: "g", Endpoints: []EndpointInfo{westInfo}}); err != nil {
		t.Fatal(err)
	}
	if len(east.takeCalls()) != 0 || len(west.takeCalls()) != 1 {
		t.Fatal("endpoints in an item must restrict the fan-out")
	}
	// Issue 11 item 5: an empty endpoint list sent nowhere and said nothing; it is an error
	// now, for Send and for the output binding alike.
	if err := s.Send(ctx, "chat", Message{Target: "t", Endpoints: []EndpointInfo{}}); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("empty endpoints: %v", err)
	}
	if err := s.Output(ctx, "chat", json.RawMessage(`{"target":"t","endpoints":[]}`)); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("output with empty endpoints: %v", err)
	}
	if err := s.Apply(ctx, "chat", GroupAction{Action: GroupAdd, UserID: "u", GroupName: "g",
		Endpoints: []EndpointInfo{{EndpointType: "Primary", Name: "nobody", Endpoint: west.URL}}}); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("unknown endpoint: %v", err)
	}
	if len(east.takeCalls())+len(west.takeCalls()) != 0 {
		t.Fatal("an empty endpoint list sends nowhere")
	}

	n, err := s.Negotiation(ctx, "chat", &ConnectionInfoOptions{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Endpoints) != 2 {
		t.Fatalf("negotiation = %+v", n)
	}
	for _, e := range n.Endpoints {
		if !strings.HasPrefix(e.ConnectionInfo.URL, e.Endpoint+"/client/?hub=chat") || e.ConnectionInfo.AccessToken == "" {
			t.Fatalf("entry = %+v", e)
		}
	}
	b, _ := json.Marshal(n)
	for _, k := range []string{`"endpoints":[`, `"endpointType":"Primary"`, `"name":"east"`, `"online":`, `"connectionInfo":{"url":`} {
		if !strings.Contains(string(b), k) {
			t.Fatalf("negotiation JSON %s lacks %s", b, k)
		}
	}
	// Negotiate picks the online primary.
	info, err := s.ConnectionInfo(ctx, "chat", nil)
	if err != nil || !strings.HasPrefix(info.URL, east.URL) {
		t.Fatalf("info = %+v, %v; want the primary east", info, err)
	}
}

func TestNegotiateHandler(t *testing.T) {
	f := newFakeService(t)
	s := newTestService(t, f)
	h := s.NegotiateHandler("chat", &NegotiateOptions{AllowedOrigins: []string{"http://app.example"}})

	r := httptest.NewRequest(http.MethodPost, "/api/negotiate?negotiateVersion=1", nil)
	r.Header.Set(DefaultUserIDHeader, "alice")
	r.Header.Set("Origin", "http://app.example")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
	if w.Header().Get("Access-Control-Allow-Origin") != "http://app.example" || w.Header().Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("CORS headers = %v", w.Header())
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body) != 2 {
		t.Fatalf("body = %s (%v); want exactly url and accessToken", w.Body.String(), err)
	}
	if body["url"] != f.URL+"/client/?hub=chat" {
		t.Fatalf("url = %q", body["url"])
	}
	if c := parseToken(t, body["accessToken"]); c["asrs.s.uid"] != "alice" {
		t.Fatalf("claims = %v", c)
	}

	// GET works, without a user.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/negotiate", nil))
	if w.Code != 200 {
		t.Fatalf("GET status %d", w.Code)
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	if c := parseToken(t, body["accessToken"]); c["asrs.s.uid"] != nil {
		t.Fatalf("anonymous token has a user: %v", c)
	}

	// Preflight from an allowed origin, and from a foreign one.
	r = httptest.NewRequest(http.MethodOptions, "/api/negotiate", nil)
	r.Header.Set("Origin", "http://app.example")
	r.Header.Set("Access-Control-Request-Headers", "x-requested-with")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Headers") != "x-requested-with" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	r.Header.Set("Origin", "http://evil.example")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("a foreign origin must get no CORS headers")
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodDelete, "/api/negotiate", nil))
	if w.Code != 405 {
		t.Fatalf("DELETE status %d", w.Code)
	}

	// Custom user id source and a bad id token.
	h = s.NegotiateHandler("chat", &NegotiateOptions{
		UserID:        func(r *http.Request) string { return r.URL.Query().Get("user") },
		IDTokenHeader: "X-MS-TOKEN-AAD-ID-TOKEN", ClaimTypeList: []string{"name"},
	})
	r = httptest.NewRequest(http.MethodPost, "/api/negotiate?user=bob", nil)
	r.Header.Set("X-MS-TOKEN-AAD-ID-TOKEN", unsignedJWT(t, map[string]any{"name": "Bob"}))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	json.Unmarshal(w.Body.Bytes(), &body)
	if c := parseToken(t, body["accessToken"]); c["asrs.s.uid"] != "bob" || c["name"] != "Bob" {
		t.Fatalf("claims = %v", c)
	}
	r.Header.Set("X-MS-TOKEN-AAD-ID-TOKEN", "nonsense")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 {
		t.Fatalf("bad id token: status %d", w.Code)
	}
}

func TestServiceTriggerKeys(t *testing.T) {
	f := newFakeService(t)
	s := newTestService(t, f)
	tr, err := s.NewTrigger(nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.skip || len(tr.keys) != 1 || tr.keys[0] != svcKey {
		t.Fatal("the trigger must validate with the endpoint's key")
	}
	if _, err := New(nil, nil); err == nil {
		t.Fatal("no settings must be an error")
	}
	if _, err := NewFromMap(map[string]string{"AzureSignalRConnectionString": "Endpoint=nope"}, nil); err == nil || !strings.Contains(err.Error(), "AzureSignalRConnectionString") {
		t.Fatalf("err = %v, want it to name the setting", err)
	}
}

func TestNegotiateFailover(t *testing.T) {
	primary, secondary := newFakeService(t), newFakeService(t)
	s, err := NewFromMap(map[string]string{
		"Azure:SignalR:Endpoints:p":           primary.connectionString(),
		"Azure:SignalR:Endpoints:s:secondary": secondary.connectionString(),
	}, &Options{Client: &management.ClientOptions{Health: management.HealthOptions{Retries: -1, Timeout: 2 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tr, err := s.NewTrigger(nil)
	if err != nil || len(tr.keys) != 2 {
		t.Fatalf("trigger keys: %v, %v", tr, err)
	}
	ctx := context.Background()
	h := s.NegotiateHandler("chat", nil)
	negotiate := func() (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/negotiate", nil))
		var info ConnectionInfo
		_ = json.Unmarshal(w.Body.Bytes(), &info)
		return w.Code, info.URL
	}
	steps := []struct {
		primaryDown, secondaryDown bool
		wantCode                   int
		wantURL                    string
	}{
		{false, false, 200, primary.URL},
		{true, false, 200, secondary.URL},
		{true, true, 503, ""},
		{false, true, 200, primary.URL},
	}
	for i, st := range steps {
		primary.down.Store(st.primaryDown)
		secondary.down.Store(st.secondaryDown)
		s.Client().CheckHealth(ctx)
		code, url := negotiate()
		if code != st.wantCode || !strings.HasPrefix(url, st.wantURL) {
			t.Fatalf("step %d: %d %q, want %d %q", i, code, url, st.wantCode, st.wantURL)
		}
	}
	_, err = s.ConnectionInfo(ctx, "chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	primary.down.Store(true)
	s.Client().CheckHealth(ctx)
	if _, err := s.ConnectionInfo(ctx, "chat", nil); !errors.Is(err, management.ErrNotConnected) {
		t.Fatalf("err = %v, want ErrNotConnected", err)
	}
	// Every endpoint is listed by signalRNegotiation, online or not.
	n, err := s.Negotiation(ctx, "chat", nil)
	if err != nil || len(n.Endpoints) != 2 || n.Endpoints[0].Online || n.Endpoints[1].Online {
		t.Fatalf("negotiation = %+v, %v", n, err)
	}
}
