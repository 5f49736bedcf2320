package restapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
	"github.com/signalbox-io/signalbox/protocol"
)

func TestSendOperations(t *testing.T) {
	// current and legacy shapes for each send, and both body casings.
	type sendCase struct {
		name           string
		current, legac string
	}
	cases := []sendCase{
		{"all", ":send?excluded=b1&excluded=zz", "?excluded=b1"},
		{"user", "users/alice/:send", "users/alice"},
		{"connection", "connections/b1/:send", "connections/b1"},
		{"group", "groups/g/:send?excluded=a1", "groups/g?excluded=a1"},
	}
	bodies := map[string]string{
		"camel":  `{"target":"t","arguments":["%s",1]}`,
		"pascal": `{"Target":"t","Arguments":["%s",1]}`,
	}
	want := map[string]map[string][]string{ // send -> client -> received
		"all":        {"a1": {"t:all"}, "a2": {"t:all"}, "b1": nil, "n": {"t:all"}},
		"user":       {"a1": {"t:user"}, "a2": {"t:user"}, "b1": nil, "n": nil},
		"connection": {"a1": nil, "a2": nil, "b1": {"t:connection"}, "n": nil},
		"group":      {"a1": nil, "a2": {"t:group"}, "b1": {"t:group"}, "n": nil},
	}
	for _, st := range styles {
		for casing, tmpl := range bodies {
			for _, tc := range cases {
				t.Run(st.name+"/"+casing+"/"+tc.name, func(t *testing.T) {
					e := newEnv(t)
					clients := map[string]*hubtest.Client{
						"a1": e.connect("chat", "a1", "alice", "json"),
						"a2": e.connect("chat", "a2", "alice", "messagepack"),
						"b1": e.connect("chat", "b1", "bob", "json"),
						"n":  e.connect("chat", "n", "", "messagepack"),
					}
					e.connect("other", "o1", "alice", "json") // another hub is never reached
					for _, id := range []string{"a1", "a2", "b1"} {
						e.reg.AddToGroup("chat", "g", id)
					}
					path := tc.current
					if st.name == "legacy" {
						path = tc.legac
					}
					target := st.prefix + "Chat/" + path
					if strings.HasPrefix(path, "?") {
						target = st.prefix + "Chat" + path
					}
					body := strings.Replace(tmpl, "%s", tc.name, 1)
					wantStatus(t, e.do(http.MethodPost, target, body), http.StatusAccepted)
					for id, c := range clients {
						if got := c.Targets(t); !slices.Equal(got, want[tc.name][id]) {
							t.Errorf("%s got %q, want %q", id, got, want[tc.name][id])
						}
					}
				})
			}
		}
	}
}

func TestJSONBodyWithByteOrderMark(t *testing.T) {
	e := newEnv(t)
	c := e.connect("chat", "c", "", "json")
	wantStatus(t, e.do(http.MethodPost, "/api/hubs/chat/:send", "\xef\xbb\xbf"+`{"target":"bom","arguments":["x"]}`), http.StatusAccepted)
	if got := c.Targets(t); !slices.Equal(got, []string{"bom:x"}) {
		t.Fatalf("got %q", got)
	}
}

func TestSendToAbsentTargetsIsAccepted(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{":send", "users/nobody/:send", "connections/nope/:send", "groups/none/:send"} {
		wantStatus(t, e.do(http.MethodPost, "/api/hubs/chat/"+p, `{"target":"x"}`), http.StatusAccepted)
	}
}

func TestJSONArgumentsReachMessagePackClients(t *testing.T) {
	e := newEnv(t)
	j := e.connect("chat", "j", "", "json")
	m := e.connect("chat", "m", "", "messagepack")
	args := `["hello",{"n":1,"list":[true,null,"x"],"f":1.5},-3,null]`
	wantStatus(t, e.do(http.MethodPost, "/api/hubs/chat/:send", `{"target":"news","arguments":`+args+`}`), http.StatusAccepted)

	var want []any
	if err := json.Unmarshal([]byte(args), &want); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*hubtest.Client{j, m} {
		invs := c.Invocations(t)
		if len(invs) != 1 || invs[0].Target != "news" || invs[0].InvocationID != "" {
			t.Fatalf("%s got %+v", c.ID(), invs)
		}
		got := make([]any, len(invs[0].Arguments))
		for i, a := range invs[0].Arguments {
			if err := a.Decode(&got[i]); err != nil {
				t.Fatalf("%s: argument %d: %v", c.ID(), i, err)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s arguments %#v, want %#v", c.ID(), got, want)
		}
	}
	// The MessagePack client got real MessagePack, not JSON text in a string.
	raw, err := m.Invocations(t)[0].Arguments[0].MessagePack()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, msgp.AppendString(nil, "hello")) {
		t.Fatalf("messagepack argument bytes % x, want a msgpack str", raw)
	}
}

// multiProtocolBody builds the octet-stream body the .NET SDK sends.
func multiProtocolBody(t *testing.T, target string, protos ...protocol.Protocol) []byte {
	t.Helper()
	b := msgp.AppendMapHeader(nil, uint32(len(protos)))
	for _, p := range protos {
		arg, err := protocol.ValueOf("via-" + p.Name())
		if err != nil {
			t.Fatal(err)
		}
		frame, err := p.AppendFrame(nil, &protocol.Invocation{Target: target, Arguments: []protocol.Value{arg}})
		if err != nil {
			t.Fatal(err)
		}
		b = msgp.AppendString(b, p.Name())
		b = msgp.AppendBytes(b, frame)
	}
	return b
}

func TestOctetStreamBody(t *testing.T) {
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			j := e.connect("chat", "j", "u", "json")
			m := e.connect("chat", "m", "u", "messagepack")
			body := multiProtocolBody(t, "bin", protocol.JSON(), protocol.MessagePack())
			target := st.prefix + "chat/users/u/:send"
			if st.name == "legacy" {
				target = st.prefix + "chat/users/u"
			}
			wantStatus(t, e.do(http.MethodPost, target, string(body), withType("application/octet-stream")), http.StatusAccepted)
			if got := j.Targets(t); !slices.Equal(got, []string{"bin:via-json"}) {
				t.Errorf("json client got %q", got)
			}
			if got := m.Targets(t); !slices.Equal(got, []string{"bin:via-messagepack"}) {
				t.Errorf("messagepack client got %q", got)
			}
		})
	}
}

func TestOctetStreamMissingProtocolSkipsThoseClients(t *testing.T) {
	e := newEnv(t)
	j := e.connect("chat", "j", "", "json")
	m := e.connect("chat", "m", "", "messagepack")
	body := multiProtocolBody(t, "only", protocol.MessagePack())
	wantStatus(t, e.do(http.MethodPost, "/api/hubs/chat/:send", string(body), withType("application/octet-stream")), http.StatusAccepted)
	if n := len(j.Frames()); n != 0 {
		t.Errorf("json client got %d frames, want none", n)
	}
	if got := m.Targets(t); !slices.Equal(got, []string{"only:via-messagepack"}) {
		t.Errorf("messagepack client got %q", got)
	}
}

func TestBodyErrors(t *testing.T) {
	e := newEnv(t)
	c := e.connect("chat", "c", "", "json")
	big := `{"target":"t","arguments":["` + strings.Repeat("x", 70<<10) + `"]}`
	cases := []struct {
		name, body, ctype string
		status            int
		msg               string
	}{
		{"empty", "", "application/json", 400, msgBodyRequired},
		{"whitespace", "  \n", "application/json", 400, msgBodyRequired},
		{"no target", `{"arguments":[1]}`, "", 400, "target"},
		{"empty target", `{"target":""}`, "", 400, "target"},
		{"numeric target", `{"target":5}`, "", 400, "target"},
		{"garbage", `{not json`, "application/json", 400, "invalid JSON"},
		{"arguments not array", `{"target":"t","arguments":{}}`, "", 400, "arguments"},
		{"trailing data", `{"target":"t"} {}`, "", 400, "invalid JSON"},
		{"x-msgpack", `{"target":"t"}`, "application/x-msgpack", 415, "x-msgpack"},
		{"xml", `<a/>`, "application/xml", 415, "unsupported"},
		{"too large", big, "application/json", 413, "larger"},
		{"octet not a map", "\x93\x01\x02\x03", "application/octet-stream", 400, "map"},
		{"octet empty map", "\x80", "application/octet-stream", 400, msgBodyRequired},
		{"octet torn json frame", string(msgp.AppendBytes(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "json"), []byte(`{"type":1`))), "application/octet-stream", 400, "0x1E"},
		{"octet bad length", string(msgp.AppendBytes(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "messagepack"), []byte{0x09, 0x95})), "application/octet-stream", 400, "length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []reqOpt{}
			if tc.ctype != "" {
				opts = append(opts, withType(tc.ctype))
			}
			w := e.do(http.MethodPost, "/api/hubs/chat/:send", tc.body, opts...)
			wantStatus(t, w, tc.status)
			var eb errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil {
				t.Fatalf("error body %q: %v", w.Body.String(), err)
			}
			if eb.Code == "" || eb.Code != w.Header().Get("x-ms-error-code") {
				t.Errorf("error code %q, header %q", eb.Code, w.Header().Get("x-ms-error-code"))
			}
			if !strings.Contains(strings.ToLower(eb.Message), strings.ToLower(tc.msg)) {
				t.Errorf("message %q does not mention %q", eb.Message, tc.msg)
			}
		})
	}
	if n := len(c.Frames()); n != 0 {
		t.Fatalf("a rejected body reached a client (%d frames)", n)
	}
}

// A chunked body has no Content-Length; the limit must still hold.
func TestTooLargeChunkedBody(t *testing.T) {
	e := newEnv(t)
	big := `{"target":"t","arguments":["` + strings.Repeat("x", 70<<10) + `"]}`
	w := e.do(http.MethodPost, "/api/hubs/chat/:send", big, func(r *http.Request) { r.ContentLength = -1 })
	wantStatus(t, w, http.StatusRequestEntityTooLarge)
}
