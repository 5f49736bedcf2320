package customhandler_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/functions/customhandler"
)

// A custom-handler function with a signalRTrigger ("invocation") and a signalR output
// ("signalRMessages"), as declared in its function.json:
//
//	{"bindings":[
//	  {"type":"signalRTrigger","name":"invocation","hubName":"chat","category":"messages",
//	   "event":"broadcast","parameterNames":["text"],"direction":"in"},
//	  {"type":"signalR","name":"signalRMessages","hubName":"chat","direction":"out"}]}
func ExampleHandler() {
	broadcast := customhandler.Handler(func(r *http.Request, req *customhandler.InvokeRequest) (*customhandler.InvokeResponse, error) {
		ic, err := req.InvocationContext("invocation")
		if err != nil {
			return nil, err
		}
		var text string
		if err := ic.Arguments[0].Decode(&text); err != nil {
			return nil, err
		}
		res := &customhandler.InvokeResponse{}
		err = res.AddSignalR("signalRMessages", functions.Message{Target: "newMessage", Arguments: []any{text}})
		return res, err
	})
	mux := http.NewServeMux()
	mux.Handle("/broadcast", broadcast) // the function's folder name

	// What the Functions host posts to FUNCTIONS_CUSTOMHANDLER_PORT:
	body := `{"Data":{"invocation":{"Arguments":["hello"],"Category":"messages","Event":"broadcast",
		"Hub":"chat","ConnectionId":"c1"}},"Metadata":{}}`
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/broadcast", strings.NewReader(body)))
	fmt.Println(w.Body.String())
	// Output: {"Outputs":{"signalRMessages":[{"target":"newMessage","arguments":["hello"],"endpoints":null}]},"Logs":[],"ReturnValue":null}
}

// A negotiate function with a signalRConnectionInfo input ("connectionInfo") and an http
// output ("res").
func ExampleInvokeRequest_ConnectionInfo() {
	body := `{"Data":{"connectionInfo":"{\"url\":\"https://x.service.signalr.net/client/?hub=chat\",\"accessToken\":\"eyJ...\"}"}}`
	negotiate := customhandler.Handler(func(r *http.Request, req *customhandler.InvokeRequest) (*customhandler.InvokeResponse, error) {
		info, err := req.ConnectionInfo("connectionInfo")
		if err != nil {
			return nil, err
		}
		res := &customhandler.InvokeResponse{}
		b, _ := jsonText(info)
		res.SetHTTP("res", customhandler.HTTPResponse{StatusCode: 200, Body: b,
			Headers: map[string]string{"Content-Type": "application/json"}})
		return res, nil
	})
	w := httptest.NewRecorder()
	negotiate.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/negotiate", strings.NewReader(body)))
	fmt.Println(w.Body.String())
	// Output: {"Outputs":{"res":{"statusCode":200,"body":"{\"url\":\"https://x.service.signalr.net/client/?hub=chat\",\"accessToken\":\"eyJ...\"}","headers":{"Content-Type":"application/json"}}},"Logs":[],"ReturnValue":null}
}
