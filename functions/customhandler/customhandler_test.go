package customhandler

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signalbox-io/signalbox/functions"
)

func TestInvokeRequestBindings(t *testing.T) {
	// Values as the host sends them: the connection info as JSON text in a string, the
	// invocation context as an object, the HTTP request with Query as a JSON string.
	body := `{
	  "Data": {
	    "connectionInfo": "{\"url\":\"https://x/client/?hub=chat\",\"accessToken\":\"tok\"}",
	    "invocation": {"Arguments":["hi",2],"Error":null,"Category":"messages","Event":"send","Hub":"chat",
	                   "ConnectionId":"c1","UserId":"u1","Headers":{"X-A":"1"},"Query":{"q":"v"},"Claims":null},
	    "req": {"Url":"http://localhost:7071/api/negotiate","Method":"POST","Query":"{\"a\":\"1\"}",
	            "Headers":{"X-Ms-Client-Principal-Id":["alice"]},"Params":{},"Body":"{\"id\":1}"},
	    "endpoints": [{"endpointType":"Primary","name":"","endpoint":"https://x","online":true}],
	    "negotiation": {"endpoints":[{"endpointType":"Secondary","name":"b","endpoint":"https://b","online":false,
	                    "connectionInfo":{"url":"u","accessToken":"t"}}]}
	  },
	  "Metadata": {"sys": {"MethodName": "negotiate"}}
	}`
	var req InvokeRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	ci, err := req.ConnectionInfo("connectionInfo")
	if err != nil || ci.URL != "https://x/client/?hub=chat" || ci.AccessToken != "tok" {
		t.Fatalf("connection info = %+v, %v", ci, err)
	}
	ic, err := req.InvocationContext("invocation")
	if err != nil || ic.ConnectionID != "c1" || ic.UserID != "u1" || len(ic.Arguments) != 2 || ic.Query["q"] != "v" || ic.Claims != nil {
		t.Fatalf("invocation = %+v, %v", ic, err)
	}
	var n int
	if err := ic.Arguments[1].Decode(&n); err != nil || n != 2 {
		t.Fatalf("argument 1 = %d, %v", n, err)
	}
	hr, err := req.HTTPRequest("req")
	if err != nil || hr.Method != "POST" || hr.Query["a"] != "1" || hr.Body != `{"id":1}` || hr.Header("x-ms-client-principal-id") != "alice" {
		t.Fatalf("http request = %+v, %v", hr, err)
	}
	eps, err := req.Endpoints("endpoints")
	if err != nil || len(eps) != 1 || !eps[0].Online {
		t.Fatalf("endpoints = %+v, %v", eps, err)
	}
	neg, err := req.Negotiation("negotiation")
	if err != nil || len(neg.Endpoints) != 1 || neg.Endpoints[0].Name != "b" || neg.Endpoints[0].ConnectionInfo.AccessToken != "t" {
		t.Fatalf("negotiation = %+v, %v", neg, err)
	}
	if _, err := req.ConnectionInfo("missing"); !errors.Is(err, ErrNoBinding) {
		t.Fatalf("err = %v", err)
	}
	var meta map[string]string
	if err := json.Unmarshal(req.Metadata["sys"], &meta); err != nil || meta["MethodName"] != "negotiate" {
		t.Fatalf("metadata = %v, %v", meta, err)
	}
}

func TestInvokeResponseSignalR(t *testing.T) {
	var res InvokeResponse
	if err := res.AddSignalR("signalRMessages",
		functions.Message{Target: "newMessage", Arguments: []any{"hi"}},
		&functions.GroupAction{Action: functions.GroupRemoveAll, UserID: "u"},
		json.RawMessage(`[{"target":"a","connectionId":"c"}]`),
	); err != nil {
		t.Fatal(err)
	}
	if err := res.AddSignalR("signalRMessages", functions.GroupAction{Action: functions.GroupAdd, UserID: "u"}); !errors.Is(err, functions.ErrNoGroupName) {
		t.Fatalf("err = %v", err)
	}
	if err := res.AddSignalR("signalRMessages", map[string]any{"foo": 1}); !errors.Is(err, functions.ErrUnknownItem) {
		t.Fatalf("err = %v", err)
	}
	res.SetHTTP("res", HTTPResponse{StatusCode: 200, Body: "ok"})
	res.Log("sent %d", 3)
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Outputs":{"res":{"statusCode":200,"body":"ok"},"signalRMessages":[` +
		`{"target":"newMessage","arguments":["hi"],"endpoints":null},` +
		`{"action":"removeAll","userId":"u","endpoints":null},` +
		`{"target":"a","arguments":null,"connectionId":"c","endpoints":null}]},"Logs":["sent 3"],"ReturnValue":null}`
	if string(b) != want {
		t.Fatalf("response\n got %s\nwant %s", b, want)
	}
}

func TestHandler(t *testing.T) {
	h := Handler(func(r *http.Request, req *InvokeRequest) (*InvokeResponse, error) {
		ic, err := req.InvocationContext("invocation")
		if err != nil {
			return nil, err
		}
		res := &InvokeResponse{ReturnValue: ic.Event}
		return res, res.AddSignalR("out", functions.Message{Target: "t", ConnectionID: ic.ConnectionID})
	})
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/broadcast", strings.NewReader(body)))
		return w
	}
	w := post(`{"Data":{"invocation":{"Event":"broadcast","ConnectionId":"c9"}},"Metadata":{}}`)
	if w.Code != 200 || w.Body.String() != `{"Outputs":{"out":[{"target":"t","arguments":null,"connectionId":"c9","endpoints":null}]},"Logs":[],"ReturnValue":"broadcast"}` {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	w = post(`{"Data":{}}`)
	if w.Code != 500 || !strings.Contains(w.Body.String(), "no such binding") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if w = post(`{`); w.Code != 400 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

func FuzzInvokeRequest(f *testing.F) {
	f.Add([]byte(`{"Data":{"c":"{\"url\":\"u\",\"accessToken\":\"t\"}","i":{"ConnectionId":"c"},"r":{"Query":"{}","Body":1}}}`))
	f.Add([]byte(`{"Data":{"c":"","i":"null","r":{"Headers":{"a":"b"}}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req InvokeRequest
		if json.Unmarshal(data, &req) != nil {
			return
		}
		_, _ = req.ConnectionInfo("c")
		_, _ = req.InvocationContext("i")
		_, _ = req.HTTPRequest("r")
		_, _ = req.Negotiation("n")
		_, _ = req.Endpoints("e")
	})
}

func TestHTTPRequestRoundTrip(t *testing.T) {
	in := HTTPRequest{URL: "http://h/api/x", Method: "GET", Query: map[string]string{"a": "1"},
		Headers: map[string][]string{"X": {"1", "2"}}, Body: "text"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out HTTPRequest
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.URL != in.URL || out.Query["a"] != "1" || out.Body != "text" || len(out.Headers["X"]) != 2 {
		t.Fatalf("round trip %s -> %+v", b, out)
	}
}

// AddSignalR takes JSON items in the forms Service.Output takes, []byte included.
func TestInvokeResponseSignalRJSONForms(t *testing.T) {
	for _, item := range []any{
		[]byte(`{"target":"a","arguments":[1]}`),
		json.RawMessage(`{"target":"a","arguments":[1]}`),
		`{"target":"a","arguments":[1]}`,
		[]byte(`[{"target":"a","arguments":[1]}]`),
	} {
		var res InvokeResponse
		if err := res.AddSignalR("out", item); err != nil {
			t.Errorf("%T %s: %v", item, item, err)
			continue
		}
		b, _ := json.Marshal(res.Outputs["out"])
		if want := `[{"target":"a","arguments":[1],"endpoints":null}]`; string(b) != want {
			t.Errorf("%T: output %s, want %s", item, b, want)
		}
	}
}
