package management_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/management"
)

// fakeSignalR prints the REST calls it receives; it stands in for Azure SignalR Service
// or Signalbox so that the examples run.
func fakeSignalR() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(strings.TrimSpace(r.Method + " " + r.URL.RequestURI() + " " + string(body)))
		if strings.HasPrefix(r.URL.Path, "/api/hubs/chat/users/") && r.Method == http.MethodHead {
			w.Header().Set("x-ms-error-code", management.CodeUserNotExisted)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
}

func newClient(url string) *management.Client {
	settings := connection.FromMap(map[string]string{
		"AzureSignalRConnectionString": "Endpoint=" + url + ";AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefgh;Version=1.0;",
	})
	endpoints, err := settings.Resolve("", nil)
	if err != nil {
		panic(err)
	}
	client, err := management.NewClient(endpoints, nil)
	if err != nil {
		panic(err)
	}
	return client
}

func ExampleClient_SendToAll() {
	srv := fakeSignalR()
	defer srv.Close()
	client := newClient(srv.URL)
	defer client.Close()

	err := client.SendToAll(context.Background(), "Chat", "newMessage", []any{"hello"}, nil)
	fmt.Println(err)
	// Output:
	// POST /api/hubs/chat/:send?api-version=2022-06-01 {"Target":"newMessage","Arguments":["hello"]}
	// <nil>
}

func ExampleClient_SendToGroup() {
	srv := fakeSignalR()
	defer srv.Close()
	client := newClient(srv.URL)
	defer client.Close()

	err := client.SendToGroup(context.Background(), "chat", "room 1", "newMessage", []any{"hi", 42},
		&management.SendOptions{Excluded: []string{"conn-1"}})
	fmt.Println(err)
	// Output:
	// POST /api/hubs/chat/groups/room%201/:send?api-version=2022-06-01&excluded=conn-1 {"Target":"newMessage","Arguments":["hi",42]}
	// <nil>
}

func ExampleClient_AddConnectionToGroup() {
	srv := fakeSignalR()
	defer srv.Close()
	client := newClient(srv.URL)
	defer client.Close()

	err := client.AddConnectionToGroup(context.Background(), "chat", "room1", "conn-1", nil)
	fmt.Println(err)
	// Output:
	// PUT /api/hubs/chat/groups/room1/connections/conn-1?api-version=2022-06-01
	// <nil>
}

func ExampleClient_UserExists() {
	srv := fakeSignalR()
	defer srv.Close()
	client := newClient(srv.URL)
	defer client.Close()

	ok, err := client.UserExists(context.Background(), "chat", "alice", nil)
	fmt.Println(ok, err)
	// Output:
	// HEAD /api/hubs/chat/users/alice?api-version=2022-06-01
	// false <nil>
}

func ExampleClient_ClientToken() {
	client := newClient("https://example.service.signalr.net")
	defer client.Close()

	access, err := client.ClientToken(context.Background(), "Chat", &management.ClientTokenOptions{UserID: "alice"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(access.URL, access.AccessToken != "")
	// Output: https://example.service.signalr.net/client/?hub=chat true
}

func ExampleClient_PickEndpoint() {
	settings := connection.FromMap(map[string]string{
		"Azure:SignalR:Endpoints:east":           "Endpoint=https://east.service.signalr.net;AccessKey=key1;Version=1.0;",
		"Azure:SignalR:Endpoints:west:secondary": "Endpoint=https://west.service.signalr.net;AccessKey=key2;Version=1.0;",
	})
	endpoints, err := settings.Resolve("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := management.NewClient(endpoints, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Start runs health checks in the background so that PickEndpoint avoids endpoints
	// that are down; here both are assumed online, so the primary is picked.
	defer client.Close()
	ep, err := client.PickEndpoint("chat")
	fmt.Println(ep, err)
	// Output: [east](Primary)https://east.service.signalr.net <nil>
}

func ExampleOptionsFromSettings() {
	settings := connection.FromMap(map[string]string{
		"AzureSignalRRetry__Mode":       "Exponential",
		"AzureSignalRRetry__MaxRetries": "5",
		"AzureSignalRHttpClientTimeout": "00:00:30",
	})
	opts, err := management.OptionsFromSettings(settings)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(opts.Retry.MaxRetries, opts.Retry.Mode == management.RetryExponential, opts.Retry.Delay, opts.Timeout)
	// Output: 5 true 800ms 30s
}

func ExampleClient_Start() {
	primary, backup := fakeHealth(), fakeHealth()
	defer primary.Close()
	defer backup.Close()
	settings := connection.FromMap(map[string]string{
		"Azure:SignalR:Endpoints:primary":          "Endpoint=" + primary.URL + ";AccessKey=key1;Version=1.0;",
		"Azure:SignalR:Endpoints:backup:secondary": "Endpoint=" + backup.URL + ";AccessKey=key2;Version=1.0;",
	})
	endpoints, err := settings.Resolve("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := management.NewClient(endpoints, &management.ClientOptions{
		Health: management.HealthOptions{Interval: 30 * time.Second},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// With several endpoints, Start checks HEAD /api/health in the background so that
	// PickEndpoint and the fan-out skip endpoints that are down.
	if err := client.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	for _, st := range client.Endpoints() {
		fmt.Println(st.Name, st.Type)
	}
	// Output:
	// backup Secondary
	// primary Primary
}

func fakeHealth() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}
