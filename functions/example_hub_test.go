package functions_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/functions"
)

// Room is a class-based hub in the style of C#'s ServerlessHub: it embeds *functions.Hub,
// which Service.RegisterHub sets, so its methods reach the hub's clients and groups without
// naming the hub.
type Room struct {
	*functions.Hub
}

// Broadcast sends newMessage(text) to every client of the hub.
func (r *Room) Broadcast(ctx context.Context, text string) error {
	return r.Clients.All().Send(ctx, "newMessage", text)
}

// Join adds the calling connection to a group and tells the group.
func (r *Room) Join(ctx context.Context, ic *functions.InvocationContext, group string) error {
	if err := r.Groups.Add(ctx, ic.ConnectionID, group); err != nil {
		return err
	}
	return r.Clients.Group(group).Send(ctx, "joined", ic.UserID)
}

// Whisper sends to every connection of one user and returns whether the user is connected.
func (r *Room) Whisper(ctx context.Context, ic *functions.InvocationContext, user, text string) (bool, error) {
	online, err := r.ClientManager.UserExists(ctx, user)
	if err != nil || !online {
		return false, err
	}
	return true, r.Clients.User(user).Send(ctx, "whisper", ic.UserID, text)
}

// fakeREST stands in for the service's REST API and prints each call.
func fakeREST() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(strings.TrimSpace(r.Method + " " + r.URL.Path + " " + string(body)))
		w.WriteHeader(http.StatusAccepted)
	}))
}

// invoke sends an upstream request as the service does when a client invokes method.
func invoke(h http.Handler, key, user, method, args string) string {
	req := httptest.NewRequest(http.MethodPost, functions.TriggerPath,
		strings.NewReader(`{"type":1,"invocationId":"1","target":"`+method+`","arguments":`+args+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(functions.HeaderHub, "room")
	req.Header.Set(functions.HeaderCategory, functions.CategoryMessages)
	req.Header.Set(functions.HeaderEvent, method)
	req.Header.Set(functions.HeaderConnectionID, "conn-1")
	req.Header.Set(functions.HeaderUserID, user)
	req.Header.Set(functions.HeaderSignature, auth.UpstreamSignature([]string{key}, "conn-1"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return strings.TrimSuffix(w.Body.String(), "\x1e")
}

// A class-based hub using the hub-scoped Clients, Groups and ClientManager: client
// invocations arrive through the trigger and become REST calls on hub "room".
func ExampleHub() {
	rest := fakeREST()
	defer rest.Close()
	const key = "secret-key"
	svc, err := functions.NewFromMap(map[string]string{
		"AzureSignalRConnectionString": "Endpoint=" + rest.URL + ";AccessKey=" + key + ";Version=1.0;",
	}, nil)
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	trigger, err := svc.NewTrigger(nil)
	if err != nil {
		panic(err)
	}
	if err := svc.RegisterHub(trigger, &Room{}, nil); err != nil {
		panic(err)
	}

	fmt.Println(invoke(trigger, key, "alice", "broadcast", `["hello"]`))
	fmt.Println(invoke(trigger, key, "alice", "join", `["lobby"]`))
	fmt.Println(invoke(trigger, key, "alice", "whisper", `["bob","psst"]`))
	// Output:
	// POST /api/hubs/room/:send {"Target":"newMessage","Arguments":["hello"]}
	// {"type":3,"invocationId":"1","result":null}
	// PUT /api/hubs/room/groups/lobby/connections/conn-1
	// POST /api/hubs/room/groups/lobby/:send {"Target":"joined","Arguments":["alice"]}
	// {"type":3,"invocationId":"1","result":null}
	// HEAD /api/hubs/room/users/bob
	// POST /api/hubs/room/users/bob/:send {"Target":"whisper","Arguments":["alice","psst"]}
	// {"type":3,"invocationId":"1","result":true}
}

// The same operations outside a trigger, e.g. from a timer function: a Hub from Service.Hub.
func ExampleService_Hub() {
	rest := fakeREST()
	defer rest.Close()
	svc, err := functions.NewFromMap(map[string]string{
		"AzureSignalRConnectionString": "Endpoint=" + rest.URL + ";AccessKey=secret-key;Version=1.0;",
	}, nil)
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	ctx := context.Background()
	chat := svc.Hub("chat")
	_ = chat.UserGroups.Add(ctx, "alice", "admins")
	_ = chat.Clients.GroupExcept("admins", "conn-9").Send(ctx, "notice", "maintenance at noon")
	_ = chat.ClientManager.CloseConnection(ctx, "conn-7", "idle")
	// Output:
	// PUT /api/hubs/chat/users/alice/groups/admins
	// POST /api/hubs/chat/groups/admins/:send {"Target":"notice","Arguments":["maintenance at noon"]}
	// DELETE /api/hubs/chat/connections/conn-7
}

// A negotiate function that adds custom claims (C#'s SignalRConnectionDetail.Claims) and
// sends clients of one tenant to a named endpoint.
func ExampleNegotiateOptions_configure() {
	svc, err := functions.NewFromMap(map[string]string{
		"Azure__SignalR__Endpoints__east": "Endpoint=https://east.service.signalr.net;AccessKey=k1;Version=1.0;",
		"Azure__SignalR__Endpoints__west": "Endpoint=https://west.service.signalr.net;AccessKey=k2;Version=1.0;",
	}, nil)
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	negotiate := svc.Hub("chat").NegotiateHandler(&functions.NegotiateOptions{
		Configure: func(r *http.Request, o *functions.ConnectionInfoOptions) error {
			tenant := r.URL.Query().Get("tenant")
			if tenant == "" {
				return fmt.Errorf("tenant is required")
			}
			o.Claims = append(o.Claims, auth.Claim{Type: "tenant", Value: tenant})
			if tenant == "contoso" {
				o.Endpoint = "west"
			}
			return nil
		},
	})
	for _, q := range []string{"?tenant=contoso", ""} {
		w := httptest.NewRecorder()
		negotiate.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/negotiate"+q, nil))
		if w.Code != http.StatusOK {
			fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
			continue
		}
		var info functions.ConnectionInfo
		_ = json.Unmarshal(w.Body.Bytes(), &info)
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(info.AccessToken, ".")[1])
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		fmt.Println(info.URL, claims["tenant"])
	}
	// Output:
	// https://west.service.signalr.net/client/?hub=chat contoso
	// 403 tenant is required
}
