package upstream

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// TestResponseTable checks every row of the response table of spec section 5.4.
func TestResponseTable(t *testing.T) {
	type row struct {
		name   string
		proto  protocol.Protocol
		opts   func(*Options)
		handle func(t *testing.T, p protocol.Protocol) (http.HandlerFunc, []byte)
		check  func(t *testing.T, frame []byte, c *protocol.Completion, body []byte)
	}
	completionBody := func(id string) func(t *testing.T, p protocol.Protocol) (http.HandlerFunc, []byte) {
		return func(t *testing.T, p protocol.Protocol) (http.HandlerFunc, []byte) {
			b, err := p.AppendFrame(nil, &protocol.Completion{InvocationID: id, Result: strArg(t, "result!"), HasResult: true})
			if err != nil {
				t.Fatal(err)
			}
			return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(b) }, b
		}
	}
	status := func(code int, body string) func(*testing.T, protocol.Protocol) (http.HandlerFunc, []byte) {
		return func(*testing.T, protocol.Protocol) (http.HandlerFunc, []byte) {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(code)
				_, _ = w.Write([]byte(body))
			}, []byte(body)
		}
	}
	handler := func(h http.HandlerFunc) func(*testing.T, protocol.Protocol) (http.HandlerFunc, []byte) {
		return func(*testing.T, protocol.Protocol) (http.HandlerFunc, []byte) { return h, nil }
	}
	wantError := func(text string) func(*testing.T, []byte, *protocol.Completion, []byte) {
		return func(t *testing.T, _ []byte, c *protocol.Completion, _ []byte) {
			if c.Error != text || c.HasResult {
				t.Errorf("completion error %q (result %v), want %q", c.Error, c.HasResult, text)
			}
		}
	}
	wantResult := func(verbatim bool) func(*testing.T, []byte, *protocol.Completion, []byte) {
		return func(t *testing.T, frame []byte, c *protocol.Completion, body []byte) {
			var s string
			if c.Error != "" || !c.HasResult || c.Result.Decode(&s) != nil || s != "result!" {
				t.Errorf("completion %+v, want result \"result!\"", c)
			}
			if verbatim && !bytes.Equal(frame, body) {
				t.Errorf("frame %q is not the upstream body %q relayed verbatim", frame, body)
			}
		}
	}
	voidOK := func(t *testing.T, _ []byte, c *protocol.Completion, _ []byte) {
		if c.Error != "" || c.HasResult {
			t.Errorf("want a void completion, got %+v", c)
		}
	}
	rows := []row{
		{name: "200 completion json", proto: protocol.JSON(), handle: completionBody("1"), check: wantResult(true)},
		{name: "200 completion msgpack", proto: protocol.MessagePack(), handle: completionBody("1"), check: wantResult(true)},
		{name: "200 completion other id", proto: protocol.JSON(), handle: completionBody("99"), check: wantResult(false)},
		{name: "200 completion msgpack other id", proto: protocol.MessagePack(), handle: completionBody("99"), check: wantResult(false)},
		{name: "200 unframed json completion", proto: protocol.JSON(), handle: status(200, `{"type":3,"invocationId":"1","result":"result!"}`), check: wantResult(false)},
		{name: "200 empty", proto: protocol.JSON(), handle: status(200, ""), check: voidOK},
		{name: "200 empty msgpack", proto: protocol.MessagePack(), handle: status(200, ""), check: voidOK},
		{name: "204", proto: protocol.JSON(), handle: status(204, ""), check: voidOK},
		{name: "404", proto: protocol.JSON(), handle: status(404, "not found"), check: wantError("Invocation failed, status code 404")},
		{name: "401", proto: protocol.MessagePack(), handle: status(401, ""), check: wantError("Invocation failed, status code 401")},
		{name: "500", proto: protocol.JSON(), handle: status(500, "boom"), check: wantError("Invocation failed, status code 500")},
		{name: "302 not followed", proto: protocol.JSON(), handle: handler(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }),
			check: wantError("Invocation failed, status code 302")},
		{name: "non-completion body", proto: protocol.JSON(), handle: status(200, "{\"type\":6}\x1e"), check: wantError(ErrTextInvalidResponse)},
		{name: "garbage body", proto: protocol.JSON(), handle: status(200, "hello"), check: wantError(ErrTextInvalidResponse)},
		{name: "two completions", proto: protocol.JSON(), handle: status(200, "{\"type\":3,\"invocationId\":\"1\"}\x1e{\"type\":3,\"invocationId\":\"1\"}\x1e"), check: wantError(ErrTextInvalidResponse)},
		{name: "json completion to msgpack client", proto: protocol.MessagePack(), handle: status(200, "{\"type\":3,\"invocationId\":\"1\"}\x1e"), check: wantError(ErrTextInvalidResponse)},
		{name: "timeout", proto: protocol.JSON(), opts: func(o *Options) { o.Timeout = 100 * time.Millisecond },
			handle: handler(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }),
			check:  wantError(ErrTextTimeout)},
		{name: "too large declared", proto: protocol.JSON(), opts: func(o *Options) { o.MaxResponseSize = 1024 },
			handle: status(200, strings.Repeat("x", 1025)), check: wantError(ErrTextTooLarge)},
		{name: "too large streamed", proto: protocol.JSON(), opts: func(o *Options) { o.MaxResponseSize = 1024 },
			handle: handler(func(w http.ResponseWriter, _ *http.Request) {
				for range 4 {
					_, _ = w.Write([]byte(strings.Repeat("x", 512)))
					w.(http.Flusher).Flush() // chunked: no Content-Length
				}
			}),
			check: wantError(ErrTextTooLarge)},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			h, body := tt.handle(t, tt.proto)
			f := newFake(t, h)
			opts := Options{Rules: ParseRules([]string{f.srv.URL + "/runtime/webhooks/signalr?code=SECRET"})}
			if tt.opts != nil {
				tt.opts(&opts)
			}
			u := newUpstream(t, opts)
			r := newReplies(tt.proto)
			s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: tt.proto}, r.fn)
			s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "echo"})
			frame := r.nextFrame(t)
			c := decodeCompletion(t, tt.proto, frame)
			if c.InvocationID != "1" {
				t.Errorf("completion id %q, want 1", c.InvocationID)
			}
			tt.check(t, frame, c, body)
			if n := f.count(); n != 1 {
				t.Errorf("upstream got %d requests, want 1 (messages are not retried)", n)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	logs := &logBuffer{}
	u := newUpstream(t, Options{
		Rules:  ParseRules([]string{"http://" + addr + "/runtime/webhooks/signalr?code=SECRET"}),
		Logger: logs.logger(), RetryMinBackoff: time.Millisecond,
	})
	for _, p := range []protocol.Protocol{protocol.JSON(), protocol.MessagePack()} {
		r := newReplies(p)
		s := u.Open(ConnInfo{ID: "c-" + p.Name(), Hub: "chat", Protocol: p}, r.fn)
		s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "echo"})
		if c := r.next(t); c.Error != ErrTextUnreachable {
			t.Errorf("%s: completion error %q, want %q", p.Name(), c.Error, ErrTextUnreachable)
		}
	}
	out := logs.String()
	if strings.Contains(out, "SECRET") || strings.Contains(out, "code=") {
		t.Errorf("log leaks the URL query: %s", out)
	}
	if !strings.Contains(out, "the function app is not reachable at this URL") || !strings.Contains(out, "http://"+addr+"/runtime/webhooks/signalr") {
		t.Errorf("log lacks the cause or the URL: %s", out)
	}
	st := u.Stats()
	if st.FailedNetwork != 2 || st.Requests != 2 || st.Retries != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTooLargeDefault16MB(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		for range 16 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte("x"))
	})
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL})})
	r := newReplies(protocol.JSON())
	u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn).Invoke(&protocol.Invocation{InvocationID: "1", Target: "big"})
	if c := r.next(t); c.Error != ErrTextTooLarge {
		t.Errorf("completion error %q", c.Error)
	}
}

func TestFailureLogs(t *testing.T) {
	tests := []struct {
		code  int
		cause string
	}{
		{404, "no function handles this hub/event"},
		{401, "check the ?code= key in the upstream URL"},
		{403, "the function app refused the request"}, // not the keys: those give 401 (issue 11 item 3)
		{500, "the function failed"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.code)
				_, _ = w.Write([]byte("function says no"))
			})
			logs := &logBuffer{}
			u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL + "/runtime/webhooks/signalr?code=SECRET"}), Logger: logs.logger(), AccessKeys: []string{"KEYSECRET"}})
			r := newReplies(protocol.JSON())
			u.Open(ConnInfo{ID: "conn-9", Hub: "Chat", Protocol: protocol.JSON()}, r.fn).Invoke(&protocol.Invocation{InvocationID: "1", Target: "echo"})
			r.next(t)
			out := logs.String()
			for _, want := range []string{"level=WARN", tt.cause, "response=\"function says no\"", "status=" + strconv.Itoa(tt.code), "hub=chat", "category=messages", "event=echo", "connectionId=conn-9", f.srv.URL + "/runtime/webhooks/signalr"} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %q: %s", want, out)
				}
			}
			if strings.Contains(out, "SECRET") {
				t.Errorf("log leaks a secret: %s", out)
			}
			if st := u.Stats(); st.Failures != 1 || st.FailedStatus != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestNoMatchingRuleFailsAtOnce(t *testing.T) {
	f := newFake(t, nil)
	u := newUpstream(t, Options{Rules: []Rule{{URLTemplate: f.srv.URL, CategoryPattern: "connections"}}})
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "Chat", Protocol: protocol.JSON()}, r.fn)
	s.Invoke(&protocol.Invocation{InvocationID: "5", Target: "echo"})
	select {
	case frame := <-r.ch: // replied before Invoke returned
		c := decodeCompletion(t, protocol.JSON(), frame)
		if want := "Invocation failed, no upstream matches hub chat, event echo."; c.Error != want || c.InvocationID != "5" {
			t.Errorf("completion %+v, want error %q", c, want)
		}
	default:
		t.Fatal("no immediate completion for an invocation without a matching rule")
	}
	s.Invoke(&protocol.Invocation{Target: "fire"}) // non-blocking: silently dropped
	if len(r.ch) != 0 {
		t.Error("a non-blocking invocation got a reply")
	}
	if st := u.Stats(); st.NoRule != 2 || st.Requests != 0 {
		t.Errorf("stats %+v", st)
	}
}
