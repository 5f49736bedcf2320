// Command handler is a Go custom handler for the Azure Functions host with the SignalR
// Service bindings: function "negotiate" (httpTrigger + signalRConnectionInfo) and
// function "broadcast" (signalRTrigger for hub chat, event broadcast, with a signalR
// output). `signalbox functions init` writes it next to host.json and the functions'
// function.json files; build it as "handler" and start the host with `func start`.
package main

import (
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"os"

	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/functions/customhandler"
)

func main() {
	mux := http.NewServeMux()
	// The host posts each invocation to /<function folder name>.
	mux.Handle("/negotiate", customhandler.Handler(negotiate))
	mux.Handle("/broadcast", customhandler.Handler(broadcast))
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		port = "8080"
	}
	log.Printf("custom handler listening on 127.0.0.1:%s", port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}

// negotiate answers the client's POST /api/negotiate with the connection info the
// signalRConnectionInfo input binding produced: {url, accessToken}.
func negotiate(_ *http.Request, req *customhandler.InvokeRequest) (*customhandler.InvokeResponse, error) {
	info, err := req.ConnectionInfo("connectionInfo")
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	res := &customhandler.InvokeResponse{}
	res.SetHTTP("res", customhandler.HTTPResponse{StatusCode: http.StatusOK, Body: string(body),
		Headers: map[string]string{"Content-Type": "application/json"}})
	return res, nil
}

// broadcast runs when a client invokes broadcast(text): it sends newMessage(text) to
// every client of the hub through the signalR output binding.
func broadcast(_ *http.Request, req *customhandler.InvokeRequest) (*customhandler.InvokeResponse, error) {
	ic, err := req.InvocationContext("invocation")
	if err != nil {
		return nil, err
	}
	if len(ic.Arguments) != 1 {
		return nil, errors.New("broadcast takes one argument, the text")
	}
	var text string
	if err := ic.Arguments[0].Decode(&text); err != nil {
		return nil, err
	}
	res := &customhandler.InvokeResponse{}
	err = res.AddSignalR("signalRMessages", functions.Message{Target: "newMessage", Arguments: []any{text}})
	return res, err
}
