package functions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/tinylib/msgp/msgp"
)

const (
	testKey  = "primary-key-0123456789"
	testKey2 = "secondary-key-abcdefgh"
	testConn = "conn-1"
)

// upstreamRequest builds a request as the service sends it; sign=nil signs with testKey.
type upstreamRequest struct {
	method, contentType, hub, category, event, conn, body string
	sigKeys                                               []string
	noSig                                                 bool
	headers                                               map[string]string
	omit                                                  []string
}

func (u upstreamRequest) build() *http.Request {
	method := u.method
	if method == "" {
		method = http.MethodPost
	}
	r := httptest.NewRequest(method, TriggerPath, strings.NewReader(u.body))
	set := func(k, v string) {
		for _, o := range u.omit {
			if strings.EqualFold(o, k) {
				return
			}
		}
		r.Header.Set(k, v)
	}
	ct := u.contentType
	if ct == "" {
		ct = "application/json"
	}
	set("Content-Type", ct)
	set(HeaderHub, u.hub)
	set(HeaderCategory, u.category)
	set(HeaderEvent, u.event)
	set(HeaderConnectionID, u.conn)
	if !u.noSig {
		keys := u.sigKeys
		if keys == nil {
			keys = []string{testKey}
		}
		set(HeaderSignature, auth.UpstreamSignature(keys, u.conn))
	}
	for k, v := range u.headers {
		set(k, v)
	}
	return r
}

func serve(t *testing.T, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func newTestTrigger(t *testing.T, opts TriggerOptions) *Trigger {
	t.Helper()
	if opts.AccessKeys == nil && !opts.SkipSignatureValidation {
		opts.AccessKeys = []string{testKey}
	}
	tr, err := NewTrigger(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func invokeJSON(id, target, args string) string {
	if id == "" {
		return `{"type":1,"target":"` + target + `","arguments":` + args + `}`
	}
	return `{"type":1,"invocationId":"` + id + `","target":"` + target + `","arguments":` + args + `}`
}

func TestTriggerStatusLadder(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{Code: "sys-key"})
	var mu sync.Mutex
	var disconnectErr string
	tr.HandleConnected("chat", func(ctx context.Context, ic *InvocationContext) error {
		if ic.UserID == "banned" {
			return errors.New("go away")
		}
		return nil
	})
	tr.HandleDisconnected("chat", func(ic *InvocationContext) error {
		mu.Lock()
		disconnectErr = ic.Error
		mu.Unlock()
		return errors.New("ignored")
	})
	tr.HandleMessage("chat", "echo", func(x string) (string, error) { return x, nil })
	tr.HandleMessage("chat", "fail", func() error { return errors.New("boom") })

	base := upstreamRequest{hub: "chat", category: "messages", event: "echo", conn: testConn, body: invokeJSON("", "echo", `["a"]`)}
	with := func(f func(*upstreamRequest)) upstreamRequest { u := base; f(&u); return u }

	cases := []struct {
		name     string
		req      upstreamRequest
		query    string
		want     int
		wantBody string
	}{
		{"wrong code", base, "code=nope", 401, ""},
		{"no code", base, "-", 401, ""},
		{"code header", with(func(u *upstreamRequest) { u.headers = map[string]string{"x-functions-key": "sys-key"} }), "-", 200, ""},
		{"GET", with(func(u *upstreamRequest) { u.method = http.MethodGet }), "", 405, ""},
		{"text/plain", with(func(u *upstreamRequest) { u.contentType = "text/plain" }), "", 415, ""},
		{"no content type", with(func(u *upstreamRequest) { u.omit = []string{"Content-Type"} }), "", 415, ""},
		{"json with charset", with(func(u *upstreamRequest) { u.contentType = "application/json; charset=utf-8" }), "", 200, ""},
		{"empty hub", with(func(u *upstreamRequest) { u.hub = "" }), "", 400, ""},
		{"missing category", with(func(u *upstreamRequest) { u.omit = []string{HeaderCategory} }), "", 400, ""},
		{"empty event", with(func(u *upstreamRequest) { u.event = "" }), "", 400, ""},
		{"unknown event", with(func(u *upstreamRequest) { u.event = "nope"; u.body = invokeJSON("", "nope", "[]") }), "", 404, ""},
		{"unknown hub", with(func(u *upstreamRequest) { u.hub = "other" }), "", 404, ""},
		{"case-insensitive route", with(func(u *upstreamRequest) { u.hub = "CHAT"; u.category = "Messages"; u.event = "ECHO" }), "", 200, ""},
		{"missing connection id", with(func(u *upstreamRequest) { u.omit = []string{HeaderConnectionID, HeaderSignature} }), "", 500, ""},
		{"unparsable body", with(func(u *upstreamRequest) { u.body = "{not json" }), "", 500, ParsingFailedText},
		{"unparsable body beats signature", with(func(u *upstreamRequest) { u.body = "{not json"; u.noSig = true }), "", 500, ParsingFailedText},
		{"target differs from event", with(func(u *upstreamRequest) { u.body = invokeJSON("", "other", "[]") }), "", 500, ""},
		{"no signature", with(func(u *upstreamRequest) { u.noSig = true }), "", 401, UnauthorizedSignatureText},
		{"wrong key", with(func(u *upstreamRequest) { u.sigKeys = []string{"wrong"} }), "", 401, UnauthorizedSignatureText},
		{"send ok", base, "", 200, ""},
		{"send failing handler", with(func(u *upstreamRequest) { u.event = "fail"; u.body = invokeJSON("", "fail", "[]") }), "", 200, ""},
		{"connected ok", with(func(u *upstreamRequest) { u.category = "connections"; u.event = "connected"; u.body = `{"type":10}` }), "", 200, ""},
		{"connected rejected", with(func(u *upstreamRequest) {
			u.category, u.event, u.body = "connections", "connected", `{"type":10}`
			u.headers = map[string]string{HeaderUserID: "banned"}
		}), "", 403, "go away"},
		{"connected unsigned", with(func(u *upstreamRequest) { u.category, u.event, u.noSig = "connections", "connected", true }), "", 401, UnauthorizedSignatureText},
		{"disconnected failing handler", with(func(u *upstreamRequest) {
			u.category, u.event, u.body = "connections", "disconnected", `{"type":11,"error":"closed by peer"}`
		}), "", 200, ""},
		{"disconnected bad body", with(func(u *upstreamRequest) { u.category, u.event, u.body = "connections", "disconnected", `[` }), "", 500, ParsingFailedText},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req.build()
			switch tc.query {
			case "":
				r.URL.RawQuery = "code=sys-key"
			case "-":
			default:
				r.URL.RawQuery = tc.query
			}
			w := serve(t, tr, r)
			if w.Code != tc.want {
				t.Fatalf("status = %d, want %d (body %q)", w.Code, tc.want, w.Body.String())
			}
			if tc.wantBody != "" && strings.TrimSpace(w.Body.String()) != tc.wantBody {
				t.Fatalf("body = %q, want %q", w.Body.String(), tc.wantBody)
			}
			if tc.want == 200 && tc.req.category != "connections" && w.Body.Len() != 0 {
				t.Fatalf("send must answer with an empty body, got %q", w.Body.String())
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if disconnectErr != "closed by peer" {
		t.Fatalf("disconnected handler saw Error %q", disconnectErr)
	}
}

func TestTriggerSignatureKeys(t *testing.T) {
	cases := []struct {
		name       string
		configured []string
		signedWith []string
		header     string // overrides the computed header when set
		want       int
	}{
		{"one key", []string{testKey}, []string{testKey}, "", 200},
		{"two keys, signed with secondary", []string{testKey, testKey2}, []string{testKey2}, "", 200},
		{"two keys, signed with both", []string{testKey, testKey2}, []string{testKey, testKey2}, "", 200},
		{"one key, service signs with both", []string{testKey2}, []string{testKey, testKey2}, "", 200},
		{"wrong key", []string{testKey, testKey2}, []string{"other"}, "", 401},
		{"lower-case hex accepted", []string{testKey}, nil, strings.ToLower(auth.UpstreamSignature([]string{testKey}, testConn)), 200},
		{"upper-case hex accepted", []string{testKey}, nil, "sha256=" + strings.ToUpper(strings.TrimPrefix(auth.UpstreamSignature([]string{testKey}, testConn), "sha256=")), 200},
		{"garbage", []string{testKey}, nil, "sha256=zz", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTrigger(t, TriggerOptions{AccessKeys: tc.configured})
			tr.HandleConnected("chat", func(context.Context, *InvocationContext) error { return nil })
			u := upstreamRequest{hub: "chat", category: "connections", event: "connected", conn: testConn, sigKeys: tc.signedWith}
			r := u.build()
			if tc.header != "" {
				r.Header.Set(HeaderSignature, tc.header)
			}
			if w := serve(t, tr, r); w.Code != tc.want {
				t.Fatalf("status = %d, want %d", w.Code, tc.want)
			}
		})
	}
}

// The signatures a Trigger keeps per connection id (computed once) are still compared
// with every request's header: a wrong one after a right one is refused, and so is a
// right one of another connection id; the bounded cache refilling changes nothing.
func TestTriggerCachedSignatures(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{AccessKeys: []string{testKey, testKey2}})
	tr.HandleConnected("chat", func(context.Context, *InvocationContext) error { return nil })
	call := func(conn, sig string) int {
		u := upstreamRequest{hub: "chat", category: "connections", event: "connected", conn: conn, noSig: true,
			headers: map[string]string{HeaderSignature: sig}}
		return serve(t, tr, u.build()).Code
	}
	good := auth.UpstreamSignature([]string{testKey}, testConn)
	for i, tc := range []struct {
		conn, sig string
		want      int
	}{
		{testConn, good, 200},
		{testConn, auth.UpstreamSignature([]string{"other"}, testConn), 401},
		{testConn, auth.UpstreamSignature([]string{testKey2}, testConn), 200},
		{"conn-2", good, 401}, // conn-1's signature
		{testConn, "", 401},
		{testConn, good, 200},
	} {
		if got := call(tc.conn, tc.sig); got != tc.want {
			t.Fatalf("request %d (%s): %d, want %d", i, tc.conn, got, tc.want)
		}
	}
	for i := range maxCachedSignatures + 10 {
		conn := "c" + strconv.Itoa(i)
		if got := call(conn, auth.UpstreamSignature([]string{testKey2}, conn)); got != 200 {
			t.Fatalf("connection %d: %d", i, got)
		}
	}
	if got := call(testConn, auth.UpstreamSignature([]string{"other"}, testConn)); got != 401 {
		t.Fatalf("wrong key after the cache refilled: %d", got)
	}
	if got := call(testConn, good); got != 200 {
		t.Fatalf("right key after the cache refilled: %d", got)
	}
}

func TestTriggerSkipValidation(t *testing.T) {
	if _, err := NewTrigger(TriggerOptions{}); err == nil {
		t.Fatal("NewTrigger without keys must fail unless validation is skipped explicitly")
	}
	var logs bytes.Buffer
	tr := newTestTrigger(t, TriggerOptions{SkipSignatureValidation: true, Logger: newTextLogger(&logs)})
	if !strings.Contains(logs.String(), "signature validation is disabled") {
		t.Fatalf("disabling validation must be logged, got %q", logs.String())
	}
	tr.HandleConnected("chat", func(context.Context, *InvocationContext) error { return nil })
	u := upstreamRequest{hub: "chat", category: "connections", event: "connected", conn: testConn, noSig: true}
	if w := serve(t, tr, u.build()); w.Code != 200 {
		t.Fatalf("status = %d, want 200", w.Code)
	}
}

// msgpackInvocation encodes [1, {}, id|nil, target, [args...]] without the length prefix.
func msgpackInvocation(id, target string, args ...any) []byte {
	b := msgp.AppendArrayHeader(nil, 5)
	b = msgp.AppendInt(b, 1)
	b = msgp.AppendMapHeader(b, 0)
	if id == "" {
		b = msgp.AppendNil(b)
	} else {
		b = msgp.AppendString(b, id)
	}
	b = msgp.AppendString(b, target)
	b = msgp.AppendArrayHeader(b, uint32(len(args)))
	for _, a := range args {
		var err error
		if b, err = msgp.AppendIntf(b, a); err != nil {
			panic(err)
		}
	}
	return b
}

type point struct {
	X int    `json:"x"`
	Y int    `json:"y"`
	L string `json:"label"`
}

func TestTriggerTypedArguments(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	type got struct {
		s  string
		n  int
		p  point
		ic *InvocationContext
	}
	ch := make(chan got, 2)
	tr.HandleMessage("chat", "typed", func(ctx context.Context, ic *InvocationContext, s string, n int, p point) error {
		ch <- got{s, n, p, ic}
		return nil
	})
	jsonReq := upstreamRequest{hub: "chat", category: "messages", event: "typed", conn: testConn,
		body: invokeJSON("", "typed", `["hi",42,{"x":1,"y":2,"label":"p"}]`),
		headers: map[string]string{
			HeaderUserID: "alice", HeaderUserClaims: "role: admin, role: user, sub: alice, bad",
			HeaderClientQuery: "?a=1&a=2&b=x", "X-Custom": "v"}}
	mpReq := jsonReq
	mpReq.contentType = "application/x-msgpack"
	mpReq.body = string(msgpackInvocation("", "typed", "hi", 42, map[string]any{"x": 1, "y": 2, "label": "p"}))
	for _, u := range []upstreamRequest{jsonReq, mpReq} {
		t.Run(u.contentType, func(t *testing.T) {
			if w := serve(t, tr, u.build()); w.Code != 200 {
				t.Fatalf("status = %d (%s)", w.Code, w.Body.String())
			}
			g := <-ch
			if g.s != "hi" || g.n != 42 || g.p != (point{1, 2, "p"}) {
				t.Fatalf("arguments = %q %d %+v", g.s, g.n, g.p)
			}
			ic := g.ic
			if ic.Hub != "chat" || ic.Category != "messages" || ic.Event != "typed" || ic.ConnectionID != testConn || ic.UserID != "alice" {
				t.Fatalf("context = %+v", ic)
			}
			if ic.Claims["role"] != "admin" || ic.Claims["sub"] != "alice" || len(ic.Claims) != 2 {
				t.Fatalf("claims = %v", ic.Claims)
			}
			if ic.Query["a"] != "1,2" || ic.Query["b"] != "x" {
				t.Fatalf("query = %v", ic.Query)
			}
			if ic.Header("x-custom") != "v" || ic.Header("content-type") != "" {
				t.Fatalf("headers = %v", ic.Headers)
			}
		})
	}
}

func TestTriggerCompletionBytes(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	tr.HandleMessage("chat", "echo", func(x string) (string, error) { return x, nil })
	tr.HandleMessage("chat", "fail", func() (int, error) { return 0, errors.New("boom") })
	tr.HandleMessage("chat", "silent", func() error { return errors.New("") })
	tr.HandleMessage("chat", "void", func(context.Context) {})
	tr.HandleMessage("chat", "crash", func() string { panic("secret internals") })
	tr.HandleMessage("chat", "two", func(a, b int) int { return a + b })

	mp := func(fields ...any) string {
		b := msgp.AppendArrayHeader(nil, uint32(len(fields)))
		for _, f := range fields {
			if f == nil {
				b = msgp.AppendNil(b)
				continue
			}
			if m, ok := f.(map[string]any); ok && len(m) == 0 {
				b = msgp.AppendMapHeader(b, 0)
				continue
			}
			b, _ = msgp.AppendIntf(b, f)
		}
		return string(append([]byte{byte(len(b))}, b...))
	}
	empty := map[string]any{}
	cases := []struct {
		event, args string
		mpArgs      []any
		json, mp    string
	}{
		{"echo", `["hi"]`, []any{"hi"}, `{"type":3,"invocationId":"7","result":"hi"}` + "\x1e", mp(3, empty, "7", 3, "hi")},
		{"fail", `[]`, nil, `{"type":3,"invocationId":"7","error":"boom"}` + "\x1e", mp(3, empty, "7", 1, "boom")},
		{"silent", `[]`, nil, `{"type":3,"invocationId":"7","error":"Method execution failed."}` + "\x1e", mp(3, empty, "7", 1, "Method execution failed.")},
		{"void", `[]`, nil, `{"type":3,"invocationId":"7","result":null}` + "\x1e", mp(3, empty, "7", 3, nil)},
		{"crash", `[]`, nil, `{"type":3,"invocationId":"7","error":"Method execution failed."}` + "\x1e", mp(3, empty, "7", 1, "Method execution failed.")},
		{"two", `[1]`, []any{1}, `{"type":3,"invocationId":"7","error":"The function accept 2 arguments but message provided 1."}` + "\x1e",
			mp(3, empty, "7", 1, "The function accept 2 arguments but message provided 1.")},
	}
	for _, tc := range cases {
		t.Run(tc.event+"/json", func(t *testing.T) {
			u := upstreamRequest{hub: "chat", category: "messages", event: tc.event, conn: testConn, body: invokeJSON("7", tc.event, tc.args)}
			w := serve(t, tr, u.build())
			if w.Code != 200 || w.Body.String() != tc.json {
				t.Fatalf("got %d %q, want 200 %q", w.Code, w.Body.String(), tc.json)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
		})
		t.Run(tc.event+"/messagepack", func(t *testing.T) {
			u := upstreamRequest{hub: "chat", category: "messages", event: tc.event, conn: testConn,
				contentType: "application/x-msgpack", body: string(msgpackInvocation("7", tc.event, tc.mpArgs...))}
			w := serve(t, tr, u.build())
			if w.Code != 200 || w.Body.String() != tc.mp {
				t.Fatalf("got %d %x, want 200 %x", w.Code, w.Body.Bytes(), tc.mp)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/x-msgpack" {
				t.Fatalf("content type %q", ct)
			}
		})
	}
}

func TestTriggerParameterNames(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	tr.HandleMessage("chat", "named", func(ctx context.Context, ic *InvocationContext) (any, error) {
		v, ok := ic.Parameter("Message")
		if !ok {
			return nil, errors.New("no parameter")
		}
		var s string
		if err := v.Decode(&s); err != nil {
			return nil, err
		}
		return "got " + s, nil
	}, ParameterNames("user", "message"))
	for _, tc := range []struct{ args, want string }{
		{`["u","m"]`, `{"type":3,"invocationId":"1","result":"got m"}` + "\x1e"},
		{`["u"]`, `{"type":3,"invocationId":"1","error":"The function accept 2 arguments but message provided 1."}` + "\x1e"},
	} {
		u := upstreamRequest{hub: "chat", category: "messages", event: "named", conn: testConn, body: invokeJSON("1", "named", tc.args)}
		if w := serve(t, tr, u.build()); w.Body.String() != tc.want {
			t.Fatalf("args %s: got %q, want %q", tc.args, w.Body.String(), tc.want)
		}
	}
}

func TestTriggerRegistrationErrors(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	ok := func(context.Context, *InvocationContext) error { return nil }
	if err := tr.Register("chat", "messages", "Echo", ok); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                 string
		hub, category, event string
		fn                   any
		opts                 []HandlerOption
		want                 string
	}{
		{"duplicate case-insensitive", "CHAT", "Messages", "echo", ok, nil, "Duplicated key parameter hub: chat"},
		{"bad connection event", "chat", "connections", "hello", ok, nil, "Event hello is not supported in connections"},
		{"bad category", "chat", "others", "x", ok, nil, "Category others is not supported"},
		{"not a func", "chat", "messages", "a", 42, nil, "must be a func"},
		{"nil", "chat", "messages", "b", nil, nil, "nil"},
		{"typed connection handler", "chat", "connections", "connected", func(s string) {}, nil, "no arguments"},
		{"three results", "chat", "messages", "c", func() (int, int, error) { return 0, 0, nil }, nil, "at most two"},
		{"bad pair", "chat", "messages", "d", func() (int, int) { return 0, 0 }, nil, "(T, error)"},
		{"ctx late", "chat", "messages", "e", func(s string, ctx context.Context) {}, nil, "must come first"},
		{"chan param", "chat", "messages", "f", func(c chan int) {}, nil, "cannot be decoded"},
		{"duplicate names", "chat", "messages", "g", ok, []HandlerOption{ParameterNames("a", "A")}, "ignore case unique"},
		{"names vs params", "chat", "messages", "h", func(a string) {}, []HandlerOption{ParameterNames("a", "b")}, "parameter names"},
		{"empty hub", "", "messages", "i", ok, nil, "required"},
		{"too few names for variadic", "chat", "messages", "j", func(a, b string, rest ...int) {}, []HandlerOption{ParameterNames("a")}, "parameter names"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tr.Register(tc.hub, tc.category, tc.event, tc.fn, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Fatal("HandleMessage must panic on a duplicate")
		}
	}()
	tr.HandleMessage("chat", "echo", ok)
}

func TestTriggerBodyLimit(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{MaxBodySize: 64})
	tr.HandleMessage("chat", "echo", func(string) {})
	u := upstreamRequest{hub: "chat", category: "messages", event: "echo", conn: testConn, body: invokeJSON("", "echo", `["`+strings.Repeat("x", 100)+`"]`)}
	if w := serve(t, tr, u.build()); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", w.Code)
	}
}

var _ io.Writer = (*bytes.Buffer)(nil)

// FuzzTriggerBody feeds arbitrary bodies through the whole ladder in both protocols: the
// trigger must answer with a status of the ladder, never panic or hang.
func FuzzTriggerBody(f *testing.F) {
	f.Add([]byte(invokeJSON("1", "echo", `["x"]`)), false)
	f.Add([]byte(invokeJSON("", "echo", `[1,2]`)), false)
	f.Add([]byte(`{"type":1,"target":"echo"}`), false)
	f.Add([]byte(`{"type":4,"invocationId":"1","target":"echo","arguments":[]}`), false)
	f.Add(msgpackInvocation("1", "echo", "x"), true)
	f.Add(msgpackInvocation("", "echo"), true)
	f.Add([]byte{0x95, 0x01, 0x80}, true)
	f.Add([]byte{}, true)
	tr, err := NewTrigger(TriggerOptions{AccessKeys: []string{testKey}})
	if err != nil {
		f.Fatal(err)
	}
	tr.HandleMessage("chat", "echo", func(s string) string { return s })
	f.Fuzz(func(t *testing.T, body []byte, binary bool) {
		u := upstreamRequest{hub: "chat", category: "messages", event: "echo", conn: testConn, body: string(body)}
		if binary {
			u.contentType = "application/x-msgpack"
		}
		w := serve(t, tr, u.build())
		switch w.Code {
		case 200, 500:
		default:
			t.Fatalf("status %d for body %x", w.Code, body)
		}
	})
}

func TestTriggerLenientJSONBody(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	tr.HandleMessage("chat", "echo", func(args ...string) int { return len(args) })
	for body, want := range map[string]string{
		`{"Type":1,"InvocationId":"1","Target":"echo","Arguments":["a","b"]}`:      `{"type":3,"invocationId":"1","result":2}` + "\x1e",
		`{"type":1,"invocationId":"1","target":"echo"}`:                            `{"type":3,"invocationId":"1","result":0}` + "\x1e",
		`{"type":1,"invocationId":"1","target":"echo","arguments":["a"]}` + "\x1e": `{"type":3,"invocationId":"1","result":1}` + "\x1e",
	} {
		u := upstreamRequest{hub: "chat", category: "messages", event: "echo", conn: testConn, body: body}
		if w := serve(t, tr, u.build()); w.Code != 200 || w.Body.String() != want {
			t.Errorf("body %s: got %d %q, want %q", body, w.Code, w.Body.String(), want)
		}
	}
	for _, body := range []string{`{"type":2,"target":"echo"}`, `{"target":"echo","arguments":[]}`, `[1]`} {
		u := upstreamRequest{hub: "chat", category: "messages", event: "echo", conn: testConn, body: body}
		if w := serve(t, tr, u.build()); w.Code != 500 {
			t.Errorf("body %s: status %d, want 500", body, w.Code)
		}
	}
}

// The trigger holds the access keys and the code; printing it must not show them.
func TestTriggerDoesNotPrintSecrets(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{AccessKeys: []string{"SECRET-KEY"}, Code: "SECRET-CODE"})
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, tr); strings.Contains(out, "SECRET") {
			t.Errorf("%s shows a secret: %s", verb, out)
		}
	}
}

// nilErr is an error type whose Error method dereferences its receiver.
type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

// A handler returning a typed nil error (a non-nil error interface holding a nil pointer)
// must not panic the trigger: the caller gets a failed invocation or a rejected connection.
func TestTriggerTypedNilError(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{Logger: newTextLogger(io.Discard)}) // the error is logged too
	tr.HandleMessage("chat", "bad", func() error { var e *nilErr; return e })
	tr.HandleConnected("chat", func() error { var e *nilErr; return e })
	w := serve(t, tr, upstreamRequest{hub: "chat", category: "messages", event: "bad", conn: testConn, body: invokeJSON("1", "bad", "[]")}.build())
	if want := `{"type":3,"invocationId":"1","error":"` + MethodFailedText + `"}` + "\x1e"; w.Code != 200 || w.Body.String() != want {
		t.Errorf("invoke: %d %q, want 200 %q", w.Code, w.Body.String(), want)
	}
	w = serve(t, tr, upstreamRequest{hub: "chat", category: "connections", event: "connected", conn: testConn}.build())
	if w.Code != http.StatusForbidden {
		t.Errorf("connected: %d, want 403", w.Code)
	}
}

// The body is read whatever its Content-Length says, as io.ReadAll read it: a body
// shorter than announced is parsed as it is, a longer one whole, and MaxBodySize bounds
// the whole body, announced or not.
func TestTriggerBodyLengthNotTrusted(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{MaxBodySize: 96})
	tr.HandleMessage("chat", "echo", func(s string) string { return s })
	body := invokeJSON("5", "echo", `["hi"]`)
	for _, tc := range []struct {
		name   string
		length int64
		body   string
		status int
	}{
		{"exact", int64(len(body)), body, http.StatusOK},
		{"unknown", -1, body, http.StatusOK},
		{"longer than announced", 10, body, http.StatusOK},
		{"announced zero", 0, body, http.StatusOK},
		{"shorter than announced", int64(len(body)) + 20, body, http.StatusOK},
		{"announced within, over the limit", 10, body + strings.Repeat(" ", 96), http.StatusRequestEntityTooLarge},
		{"exactly the limit", 10, body + strings.Repeat(" ", 96-len(body)), http.StatusOK},
		{"one over the limit", 96, body + strings.Repeat(" ", 97-len(body)), http.StatusRequestEntityTooLarge},
		{"announced over the limit, within it", 97, body, http.StatusOK},
		{"announced and over the limit", 200, body + strings.Repeat(" ", 97-len(body)), http.StatusRequestEntityTooLarge},
	} {
		u := upstreamRequest{hub: "chat", category: "messages", event: "echo", conn: testConn, body: tc.body}
		r := u.build()
		r.ContentLength = tc.length
		w := serve(t, tr, r)
		if w.Code != tc.status {
			t.Errorf("%s: status %d %q, want %d", tc.name, w.Code, w.Body, tc.status)
			continue
		}
		if tc.status == http.StatusOK && w.Body.String() != `{"type":3,"invocationId":"5","result":"hi"}`+"\x1e" {
			t.Errorf("%s: answer %q", tc.name, w.Body)
		}
	}
}

// An echo invocation, as the service sends it (with its Content-Length), costs the
// trigger a bounded number of allocations: the body in one buffer of its size and the
// completion frame in a pooled one (io.ReadAll, http.MaxBytesReader and the frame's
// growth were five more).
func TestTriggerInvokeAllocations(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	tr.HandleMessage("chat", "echo", MessageFunc(func(_ context.Context, ic *InvocationContext) (any, error) {
		return ic.Arguments[0], nil
	}))
	u := upstreamRequest{hub: "chat", category: "messages", event: "echo", conn: testConn, body: invokeJSON("7", "echo", `[1764770000000000000,"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]`)}
	r := u.build()
	body := &rewindBody{b: []byte(u.body)}
	r.Body = body
	w := &discardWriter{h: http.Header{}}
	serveOnce := func() {
		body.off = 0
		clear(w.h)
		tr.ServeHTTP(w, r)
	}
	serveOnce() // the signature cache and the frame pool fill
	// The rest: the invocation context, its Headers map, the parsed invocation, the
	// handler's boxed result, the completion and the Content-Type header value.
	if n := testing.AllocsPerRun(100, serveOnce); n > 11 {
		t.Fatalf("%.0f allocations per invocation, want at most 11", n)
	}
}

// rewindBody is a request body that can be read again.
type rewindBody struct {
	b   []byte
	off int
}

func (r *rewindBody) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *rewindBody) Close() error { return nil }

// A body that ends in an error (net/http's io.ErrUnexpectedEOF for a client gone
// before the Content-Length it announced) is not parsed as a short body: the answer
// is the parsing failure it was before the body was read into a buffer of its length.
func TestTriggerTruncatedBodyFails(t *testing.T) {
	tr := newTestTrigger(t, TriggerOptions{})
	tr.HandleMessage("chat", "echo", func(s string) string { return s })
	body := invokeJSON("5", "echo", `["hi"]`)
	u := upstreamRequest{hub: "chat", category: "messages", event: "echo", conn: testConn, body: body}
	r := u.build()
	r.ContentLength = int64(len(body)) + 10
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader(body), iotest.ErrReader(io.ErrUnexpectedEOF)))
	if w := serve(t, tr, r); w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d %q, want 500", w.Code, w.Body)
	}
}
