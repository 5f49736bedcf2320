package restapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/cluster"
	"github.com/signalbox-io/signalbox/internal/restapi"
	"github.com/signalbox-io/signalbox/protocol"
)

type exampleClient struct{}

func (exampleClient) ID() string                  { return "conn1" }
func (exampleClient) Hub() string                 { return "chat" }
func (exampleClient) UserID() string              { return "alice" }
func (exampleClient) Protocol() protocol.Protocol { return protocol.JSON() }
func (exampleClient) Send(frame []byte) bool {
	fmt.Printf("alice <- %s\n", strings.TrimSuffix(string(frame), "\x1e"))
	return true
}
func (exampleClient) Close(string, bool) {}

func ExampleNew() {
	const key = "example-access-key-0123456789abcdef"
	node, _ := cluster.NewNode(context.Background(), cluster.Options{}) // one node, no broker to reach
	_ = node.Add(context.Background(), exampleClient{})
	api := restapi.New(restapi.Options{
		Hubs:      node,
		Validator: &auth.Validator{Keys: []string{key}},
		IssueToken: func(hub, userID string, lifetime time.Duration) (string, error) {
			return "", fmt.Errorf("not used here")
		},
	})

	// What the .NET SDK does: sign aud = endpoint + path, PascalCase body.
	path := "/api/hubs/chat/users/alice/:send"
	token, _ := auth.NewToken(key, auth.TokenOptions{Audience: "https://example.service.signalr.net" + path + "?api-version=2022-06-01"})
	r := httptest.NewRequest(http.MethodPost, "http://localhost:8080"+path+"?api-version=2022-06-01",
		strings.NewReader(`{"Target":"newMessage","Arguments":["hi"]}`))
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	w := httptest.NewRecorder()
	api.ServeHTTP(w, r)
	fmt.Println(w.Code)

	// A check for a user who is not connected: 404 with the code the SDK expects.
	path = "/api/hubs/chat/users/bob"
	token, _ = auth.NewToken(key, auth.TokenOptions{Audience: "https://example.service.signalr.net" + path})
	r = httptest.NewRequest(http.MethodHead, "http://localhost:8080"+path, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w = httptest.NewRecorder()
	api.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("x-ms-error-code"))
	// Output:
	// alice <- {"type":1,"target":"newMessage","arguments":["hi"]}
	// 202
	// 404 Warning.User.NotExisted
}
