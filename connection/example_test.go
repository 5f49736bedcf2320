package connection_test

import (
	"fmt"

	"github.com/signalbox-io/signalbox/connection"
)

func ExampleParseConnectionString() {
	cs, err := connection.ParseConnectionString("Endpoint=http://localhost;Port=8888;AccessKey=secret;Version=1.0;")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cs.Endpoint, cs.Version)
	// Output: http://localhost:8888 1.0
}

func ExampleSettings_Resolve() {
	// In an app the settings usually come from connection.FromEnviron(), where the
	// separator is "__": Azure__SignalR__Endpoints__east__secondary=...
	settings := connection.FromMap(map[string]string{
		"AzureSignalRConnectionString":                 "Endpoint=https://main.service.signalr.net;AccessKey=k1;Version=1.0;",
		"Azure__SignalR__Endpoints__backup__secondary": "Endpoint=https://backup.service.signalr.net;AccessKey=k2;Version=1.0;",
	})
	endpoints, err := settings.Resolve("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ep := range endpoints {
		fmt.Println(ep, ep.ClientEndpoint)
	}
	// Output:
	// [](Primary)https://main.service.signalr.net https://main.service.signalr.net/
	// [backup](Secondary)https://backup.service.signalr.net https://backup.service.signalr.net/
}

func ExampleSettings_Resolve_notConfigured() {
	_, err := connection.FromMap(nil).Resolve("", nil)
	fmt.Println(err)
	// Output: setting AzureSignalRConnectionString: The SignalR Service connection string or endpoints are not set.
}
