package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/functions"
)

// A trigger with a connected handler and a typed message handler, driven by a request as the
// service sends it upstream.
func ExampleTrigger() {
	const key = "access-key-from-the-connection-string"
	trigger, err := functions.NewTrigger(functions.TriggerOptions{AccessKeys: []string{key}})
	if err != nil {
		panic(err)
	}
	trigger.HandleConnected("chat", func(ctx context.Context, ic *functions.InvocationContext) error {
		fmt.Println("connected:", ic.ConnectionID)
		return nil
	})
	trigger.HandleMessage("chat", "add", func(ctx context.Context, a, b int) (int, error) {
		return a + b, nil
	})

	req := httptest.NewRequest(http.MethodPost, functions.TriggerPath,
		strings.NewReader(`{"type":1,"invocationId":"1","target":"add","arguments":[2,3]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(functions.HeaderHub, "chat")
	req.Header.Set(functions.HeaderCategory, functions.CategoryMessages)
	req.Header.Set(functions.HeaderEvent, "add")
	req.Header.Set(functions.HeaderConnectionID, "c1")
	req.Header.Set(functions.HeaderSignature, auth.UpstreamSignature([]string{key}, "c1"))
	w := httptest.NewRecorder()
	trigger.ServeHTTP(w, req)
	fmt.Printf("%d %q\n", w.Code, w.Body.String())
	// Output: 200 "{\"type\":3,\"invocationId\":\"1\",\"result\":5}\x1e"
}

type Chat struct{}

func (Chat) OnConnected(ic *functions.InvocationContext) error { return nil }

func (Chat) Echo(s string) string { return s }

// A class-based hub: exported methods become message events, OnConnected and OnDisconnected
// connection events; the hub is named after the type.
func ExampleRegisterHub() {
	trigger, err := functions.NewTrigger(functions.TriggerOptions{AccessKeys: []string{"key"}})
	if err != nil {
		panic(err)
	}
	if err := functions.RegisterHub(trigger, Chat{}, nil); err != nil {
		panic(err)
	}
	// A second registration of the same events fails.
	fmt.Println(functions.RegisterHub(trigger, Chat{}, nil))
	// Output: functions: Duplicated key parameter hub: chat, category: messages, event: echo
}

// Items of a signalR output binding as a JavaScript function would return them.
func ExampleParseOutput() {
	items, err := functions.ParseOutput([]byte(`[
		{"target": "newMessage", "arguments": ["hello"], "groupName": "room1"},
		{"action": "add", "userId": "alice", "groupName": "room1"}
	]`))
	if err != nil {
		panic(err)
	}
	for _, it := range items {
		switch v := it.(type) {
		case *functions.Message:
			fmt.Println("message", v.Target, "to group", v.GroupName)
		case *functions.GroupAction:
			fmt.Println("group action", v.Action, v.UserID, v.GroupName)
		}
	}
	_, err = functions.ParseOutput([]byte(`{"userId": "alice"}`))
	fmt.Println(err)
	// Output:
	// message newMessage to group room1
	// group action add alice room1
	// Unable to convert JObject to valid output binding type, check parameters.
}

// The signalRConnectionInfo binding: a URL and an access token for one user.
func ExampleService_ConnectionInfo() {
	svc, err := functions.NewFromMap(map[string]string{
		"AzureSignalRConnectionString": "Endpoint=https://example.service.signalr.net;AccessKey=secret-key;Version=1.0;",
	}, nil)
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	info, err := svc.ConnectionInfo(context.Background(), "Chat", &functions.ConnectionInfoOptions{UserID: "alice"})
	if err != nil {
		panic(err)
	}
	p, err := (&auth.Validator{Keys: []string{"secret-key"}}).ValidateClient(info.AccessToken, "chat")
	if err != nil {
		panic(err)
	}
	fmt.Println(info.URL)
	fmt.Println(p.UserID)
	// Output:
	// https://example.service.signalr.net/client/?hub=chat
	// alice
}

// A negotiate endpoint: clients built with withUrl("<app>/api") call <app>/api/negotiate.
func ExampleService_NegotiateHandler() {
	svc, err := functions.NewFromMap(map[string]string{
		"AzureSignalRConnectionString": "Endpoint=http://localhost:8888;AccessKey=secret-key;Version=1.0;",
	}, nil)
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	mux := http.NewServeMux()
	mux.Handle("/api/negotiate", svc.NegotiateHandler("chat", nil))

	req := httptest.NewRequest(http.MethodPost, "/api/negotiate", nil)
	req.Header.Set("x-ms-client-principal-id", "alice")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	var info functions.ConnectionInfo
	_ = json.Unmarshal(w.Body.Bytes(), &info)
	fmt.Println(w.Code, w.Header().Get("Content-Type"), info.URL)
	// Output: 200 application/json http://localhost:8888/client/?hub=chat
}

// Messages and group actions of the signalR output binding, sent through the REST API.
func ExampleService_Output() {
	// A stand-in for the service's REST API.
	rest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.Method, r.URL.Path)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer rest.Close()
	svc, err := functions.NewFromMap(map[string]string{
		"AzureSignalRConnectionString": "Endpoint=" + rest.URL + ";AccessKey=secret-key;Version=1.0;",
	}, nil)
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	err = svc.Output(context.Background(), "chat",
		functions.GroupAction{Action: functions.GroupAdd, ConnectionID: "c1", GroupName: "room1"},
		functions.Message{Target: "newMessage", Arguments: []any{"hi"}, GroupName: "room1"},
		functions.Message{Target: "newMessage", Arguments: []any{"hi"}, UserID: "alice", GroupName: "ignored"},
	)
	fmt.Println(err)
	// Output:
	// PUT /api/hubs/chat/groups/room1/connections/c1
	// POST /api/hubs/chat/groups/room1/:send
	// POST /api/hubs/chat/users/alice/:send
	// <nil>
}

// The signalREndpoints and signalRNegotiation bindings over two endpoints: every endpoint is
// listed, and negotiation yields connection info for each so the function can choose.
func ExampleService_Negotiation() {
	svc, err := functions.NewFromMap(map[string]string{
		"Azure__SignalR__Endpoints__east":            "Endpoint=https://east.service.signalr.net;AccessKey=k1;Version=1.0;",
		"Azure__SignalR__Endpoints__west__secondary": "Endpoint=https://west.service.signalr.net;AccessKey=k2;Version=1.0;",
	}, nil)
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	for _, e := range svc.Endpoints() {
		fmt.Println(e.Name, e.EndpointType, e.Endpoint)
	}
	n, err := svc.Negotiation(context.Background(), "chat", &functions.ConnectionInfoOptions{UserID: "alice"})
	if err != nil {
		panic(err)
	}
	for _, e := range n.Endpoints {
		fmt.Println(e.Name, e.ConnectionInfo.URL)
	}
	// Output:
	// east Primary https://east.service.signalr.net
	// west Secondary https://west.service.signalr.net
	// east https://east.service.signalr.net/client/?hub=chat
	// west https://west.service.signalr.net/client/?hub=chat
}

// Claims of an idToken, read without validation, as the connection info binding copies them
// for claimTypeList.
func ExampleDecodeIDToken() {
	// header {"alg":"none"}, payload {"sub":"alice","roles":["admin","user"]}
	claims, err := functions.DecodeIDToken("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsInJvbGVzIjpbImFkbWluIiwidXNlciJdfQ.")
	if err != nil {
		panic(err)
	}
	for _, c := range claims {
		fmt.Println(c.Type, c.Value)
	}
	// Output:
	// sub alice
	// roles admin
	// roles user
}
