package functions

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/signalbox-io/signalbox/protocol"
)

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

type helper struct{}

func (helper) Shout(s string) string { return strings.ToUpper(s) }

type ChatHub struct {
	helper // promoted methods are not events
	mu     sync.Mutex
	events []string
}

func (h *ChatHub) record(e string) {
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
}

func (h *ChatHub) OnConnected(ctx context.Context, ic *InvocationContext) error {
	h.record("connected " + ic.ConnectionID)
	if ic.UserID == "banned" {
		return errors.New("banned")
	}
	return nil
}

func (h *ChatHub) OnDisconnected(ic *InvocationContext) { h.record("disconnected " + ic.Error) }

func (h *ChatHub) Echo(x string) string { return x }

func (h *ChatHub) Add(ctx context.Context, a, b int) (int, error) { return a + b, nil }

func (h *ChatHub) Helper() string { return "not an event" }

func TestRegisterHubRouting(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	hub := &ChatHub{}
	if err := RegisterHub(tr, hub, &HubOptions{Ignore: []string{"helper"}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, category, event, body string
		user                        string
		wantCode                    int
		wantBody                    string
	}{
		{"echo", "messages", "echo", invokeJSON("1", "Echo", `["x"]`), "", 200, `{"type":3,"invocationId":"1","result":"x"}` + "\x1e"},
		{"add case-insensitive", "messages", "ADD", invokeJSON("2", "add", `[2,3]`), "", 200, `{"type":3,"invocationId":"2","result":5}` + "\x1e"},
		{"promoted not routed", "messages", "shout", invokeJSON("3", "shout", `["x"]`), "", 404, ""},
		{"ignored not routed", "messages", "helper", invokeJSON("4", "helper", `[]`), "", 404, ""},
		{"record not exported", "messages", "record", invokeJSON("5", "record", `["x"]`), "", 404, ""},
		{"connected", "connections", "connected", `{"type":10}`, "", 200, ""},
		{"connected rejected", "connections", "connected", `{"type":10}`, "banned", 403, "banned\n"},
		{"disconnected", "connections", "disconnected", `{"type":11,"error":"bye"}`, "", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := upstreamRequest{hub: "ChatHub", category: tc.category, event: tc.event, conn: testConn, body: tc.body}
			if tc.user != "" {
				u.headers = map[string]string{HeaderUserID: tc.user}
			}
			w := serve(t, tr, u.build())
			if w.Code != tc.wantCode || (tc.wantBody != "" && w.Body.String() != tc.wantBody) {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body.String(), tc.wantCode, tc.wantBody)
			}
		})
	}
	hub.mu.Lock()
	defer hub.mu.Unlock()
	want := "connected conn-1|connected conn-1|disconnected bye"
	if got := strings.Join(hub.events, "|"); got != want {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

type badHub struct{}

func (badHub) Ok() {}

func (badHub) Bad() (int, int) { return 0, 0 }

type dupHub struct{}

func (dupHub) Go()   {}
func (dupHub) GO()   {}
func (dupHub) Fine() {}

func TestRegisterHubErrors(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	if err := RegisterHub(tr, badHub{}, nil); err == nil || !strings.Contains(err.Error(), "Bad") {
		t.Fatalf("err = %v", err)
	}
	// Nothing of the failed hub may stay registered.
	if err := RegisterHub(tr, badHub{}, &HubOptions{Ignore: []string{"bad"}}); err != nil {
		t.Fatalf("after a failed RegisterHub the valid methods must still be free: %v", err)
	}
	if err := RegisterHub(tr, badHub{}, &HubOptions{Ignore: []string{"bad"}}); err == nil || !strings.Contains(err.Error(), "Duplicated") {
		t.Fatalf("second registration err = %v", err)
	}
	if err := RegisterHub(tr, dupHub{}, nil); err == nil || !strings.Contains(err.Error(), "same event") {
		t.Fatalf("err = %v", err)
	}
	if err := RegisterHub(tr, struct{}{}, nil); err == nil {
		t.Fatal("an anonymous type without a name must fail")
	}
	if err := RegisterHub(tr, &ChatHub{}, &HubOptions{Name: "Other"}); err != nil {
		t.Fatal(err)
	}
	u := upstreamRequest{hub: "other", category: "messages", event: "echo", conn: testConn, body: invokeJSON("1", "echo", `["z"]`)}
	if w := serve(t, tr, u.build()); w.Code != 200 {
		t.Fatalf("hub name option: status %d", w.Code)
	}
}

// shadowHub embeds helpers whose method names it declares itself: its own methods must be
// events, only the ones it merely inherits must not.
type shadowBase struct{}

func (shadowBase) Send(s string) string { return "base " + s }
func (shadowBase) Other() string        { return "other" }

type shadowPtrBase struct{}

func (*shadowPtrBase) Echo(s string) string { return "base " + s }

type ShadowHub struct {
	shadowBase
	*shadowPtrBase
}

func (h *ShadowHub) Send(s string) string { return "hub " + s }
func (ShadowHub) Echo(s string) string    { return "hub " + s }

func TestRegisterHubOwnMethodShadowingEmbedded(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	if err := RegisterHub(tr, &ShadowHub{shadowPtrBase: &shadowPtrBase{}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		event    string
		wantCode int
		wantBody string
	}{
		{"send", 200, `{"type":3,"invocationId":"1","result":"hub x"}` + "\x1e"},
		{"echo", 200, `{"type":3,"invocationId":"1","result":"hub x"}` + "\x1e"},
		{"other", 404, ""},
	} {
		w := serve(t, tr, upstreamRequest{hub: "shadowhub", category: "messages", event: c.event, conn: testConn,
			body: invokeJSON("1", c.event, `["x"]`)}.build())
		if w.Code != c.wantCode || (c.wantBody != "" && w.Body.String() != c.wantBody) {
			t.Errorf("%s: got %d %q, want %d %q", c.event, w.Code, w.Body.String(), c.wantCode, c.wantBody)
		}
	}
}

type typedHub struct{}

func (typedHub) Add(a, b int) int { return a + b }

func (typedHub) Fail() error { return errors.New("the room is full") }

// Issue 11 item 4: an argument of the wrong type sent Go's decoding text to the client
// ("json: cannot unmarshal string into Go value of type int"); it gets the extension's
// wording now, with the parameter's name when ParameterNames gives one. A handler's own
// error text still goes through as it is.
func TestArgumentTypeMismatchText(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	if err := RegisterHub(tr, typedHub{}, &HubOptions{Name: "typed"}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Register("named", CategoryMessages, "add", func(a, b int) int { return a + b }, ParameterNames("left", "right")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ hub, event, args, want string }{
		{"typed", "add", `["x",1]`, `"error":"Exception binding parameter 'arg0'"`},
		{"typed", "add", `[1,{"n":2}]`, `"error":"Exception binding parameter 'arg1'"`},
		{"named", "add", `[1,"y"]`, `"error":"Exception binding parameter 'right'"`},
		{"typed", "fail", `[]`, `"error":"the room is full"`},
		{"typed", "add", `[1]`, `"error":"The function accept 2 arguments but message provided 1."`},
	} {
		u := upstreamRequest{hub: tc.hub, category: "messages", event: tc.event, conn: testConn, body: invokeJSON("1", tc.event, tc.args)}
		w := serve(t, tr, u.build())
		if w.Code != 200 || !strings.Contains(w.Body.String(), tc.want) || strings.Contains(w.Body.String(), "unmarshal") {
			t.Errorf("%s %s: %d %q, want %s", tc.event, tc.args, w.Code, w.Body.String(), tc.want)
		}
	}
	var abe *ArgumentBindingError
	_, err := decodeArg(protocol.JSONValue([]byte(`"x"`)), reflect.TypeFor[int](), 0, nil)
	if !errors.As(err, &abe) || !strings.Contains(err.Error(), "cannot unmarshal") {
		t.Errorf("the log text keeps the detail: %v", err)
	}
}
