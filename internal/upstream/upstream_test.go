package upstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

func TestHeadersAndEventBodies(t *testing.T) {
	f := newFake(t, nil)
	u := newUpstream(t, Options{
		Rules:      []Rule{{URLTemplate: f.srv.URL + "/api/{hub}/{category}/{event}?code=k"}},
		AccessKeys: []string{"key-one"},
	})
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{
		ID:     "conn-1",
		Hub:    "ChatHub",
		UserID: "user-1",
		Query:  "?hub=chathub&id=abc&access_token=SECRET",
		Claims: []auth.Claim{
			{Type: "asrs.s.uid", Value: "user-1"},
			{Type: "role", Value: "admin"},
			{Type: "aud", Value: "http://x/client/?hub=chathub"},
			{Type: "exp", Value: "123"},
			{Type: "asrs.u.iss", Value: "custom"},
		},
		Protocol: protocol.JSON(),
	}, r.fn)

	s.Connected()
	got := f.next(t)
	check := func(name, want string) {
		t.Helper()
		if v := got.Header.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	check("X-ASRS-Connection-Id", "conn-1")
	check("X-ASRS-Hub", "chathub")
	check("X-ASRS-Category", "connections")
	check("X-ASRS-Event", "connected")
	check("X-ASRS-User-Id", "user-1")
	check("X-ASRS-User-Claims", formatClaims(auth.UserClaims(s0Claims())))
	check("X-ASRS-Client-Query", "?hub=chathub&id=abc")
	check("Content-Type", "application/json")
	check("X-ASRS-Signature", auth.UpstreamSignature([]string{"key-one"}, "conn-1"))
	if got.Path != "/api/chathub/connections/connected" || got.Query != "code=k" {
		t.Errorf("path %q query %q", got.Path, got.Query)
	}
	if string(got.Body) != `{"type":10}` {
		t.Errorf("connected body %q", got.Body)
	}
	if !auth.VerifyUpstreamSignature(got.Header.Get("X-ASRS-Signature"), []string{"key-one"}, "conn-1") {
		t.Error("signature does not verify with the key")
	}
	if auth.VerifyUpstreamSignature(got.Header.Get("X-ASRS-Signature"), []string{"other"}, "conn-1") {
		t.Error("signature verifies with a wrong key")
	}
	for name, vals := range got.Header {
		for _, v := range vals {
			if strings.Contains(v, "SECRET") {
				t.Errorf("header %s leaks the access token: %q", name, v)
			}
		}
	}

	s.Invoke(&protocol.Invocation{Target: "Send Message", Arguments: []protocol.Value{strArg(t, "hi")}})
	got = f.next(t)
	check("X-ASRS-Category", "messages")
	check("X-ASRS-Event", "Send Message")
	if got.Path != "/api/chathub/messages/Send%20Message" {
		t.Errorf("message path %q", got.Path)
	}

	s.Disconnected("")
	got = f.next(t)
	check("X-ASRS-Event", "disconnected")
	if string(got.Body) != `{"type":11}` {
		t.Errorf("clean disconnected body %q", got.Body)
	}

	s2 := u.Open(ConnInfo{ID: "conn-2", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	s2.Connected()
	got = f.next(t)
	if _, ok := got.Header["X-Asrs-User-Id"]; ok {
		t.Error("anonymous connection sent X-ASRS-User-Id")
	}
	if _, ok := got.Header["X-Asrs-User-Claims"]; ok {
		t.Error("connection without claims sent X-ASRS-User-Claims")
	}
	if got.Header.Get("X-ASRS-Signature") != auth.UpstreamSignature([]string{"key-one"}, "conn-2") {
		t.Error("the signature does not cover the second connection's id")
	}
	s2.Disconnected("Connection closed with an error. boom \"x\"")
	got = f.next(t)
	var body struct {
		Type  int    `json:"type"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(got.Body, &body); err != nil || body.Type != 11 || body.Error != "Connection closed with an error. boom \"x\"" {
		t.Errorf("disconnected body %q (%v)", got.Body, err)
	}
	if !bytes.HasPrefix(got.Body, []byte(`{"type":11,"error":`)) {
		t.Errorf("disconnected body should start with type then error: %q", got.Body)
	}
}

func s0Claims() []auth.Claim {
	return []auth.Claim{
		{Type: "asrs.s.uid", Value: "user-1"},
		{Type: "role", Value: "admin"},
		{Type: "aud", Value: "http://x/client/?hub=chathub"},
		{Type: "exp", Value: "123"},
		{Type: "asrs.u.iss", Value: "custom"},
	}
}

func TestUserClaimsHeaderHasOnlyUserClaims(t *testing.T) {
	h := formatClaims(auth.UserClaims(s0Claims()))
	if strings.Contains(h, "asrs.s.") || strings.Contains(h, "aud:") || strings.Contains(h, "exp:") {
		t.Errorf("system claims in %q", h)
	}
	if !strings.Contains(h, "role: admin") {
		t.Errorf("user claim missing from %q", h)
	}
}

func TestSignatureTwoKeys(t *testing.T) {
	f := newFake(t, nil)
	keys := []string{"primary", "secondary"}
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), AccessKeys: keys})
	s := u.Open(ConnInfo{ID: "c", Hub: "h", Protocol: protocol.JSON()}, nil)
	s.Connected()
	sig := f.next(t).Header.Get("X-ASRS-Signature")
	if parts := strings.Split(sig, ","); len(parts) != 2 || !strings.HasPrefix(parts[0], "sha256=") || !strings.HasPrefix(parts[1], "sha256=") {
		t.Fatalf("signature %q should hold two sha256= entries", sig)
	}
	for _, k := range keys {
		if !auth.VerifyUpstreamSignature(sig, []string{k}, "c") {
			t.Errorf("signature does not verify with key %q alone", k)
		}
	}
	if auth.VerifyUpstreamSignature(sig, keys, "other-connection") {
		t.Error("signature verifies for another connection id")
	}
}

func TestInvocationBodies(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.JSON(), protocol.MessagePack()} {
		t.Run(p.Name(), func(t *testing.T) {
			f := newFake(t, nil)
			u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL})})
			r := newReplies(p)
			s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: p}, r.fn)
			inv := &protocol.Invocation{InvocationID: "7", Target: "echo", Arguments: []protocol.Value{strArg(t, "hi")}}
			want, err := p.AppendUnframed(nil, inv)
			if err != nil {
				t.Fatal(err)
			}
			s.Invoke(inv)
			got := f.next(t)
			if !bytes.Equal(got.Body, want) {
				t.Errorf("body %q, want %q", got.Body, want)
			}
			ct := got.Header.Get("Content-Type")
			if p.Binary() {
				if ct != "application/x-msgpack" {
					t.Errorf("content type %q", ct)
				}
				// A bare MessagePack array: [1, headers, id, target, args(, streamIds)].
				if len(got.Body) == 0 || (got.Body[0] != 0x95 && got.Body[0] != 0x96) {
					t.Errorf("msgpack body does not start with an array header: % x", got.Body)
				}
				wantPrefix := []byte{0x01, 0x80, 0xa1, '7', 0xa4, 'e', 'c', 'h', 'o', 0x91, 0xa2, 'h', 'i'}
				if !bytes.HasPrefix(got.Body[1:], wantPrefix) {
					t.Errorf("msgpack body % x, want after the array header % x", got.Body, wantPrefix)
				}
			} else {
				if ct != "application/json" {
					t.Errorf("content type %q", ct)
				}
				if bytes.ContainsRune(got.Body, 0x1e) {
					t.Errorf("json body is framed: %q", got.Body)
				}
				var m map[string]any
				if err := json.Unmarshal(got.Body, &m); err != nil {
					t.Fatalf("json body %q: %v", got.Body, err)
				}
				if m["type"] != float64(1) || m["invocationId"] != "7" || m["target"] != "echo" {
					t.Errorf("json body %q", got.Body)
				}
			}
			msg, err := p.ParseUnframed(got.Body)
			if err != nil {
				t.Fatalf("upstream body does not parse unframed: %v", err)
			}
			if gi, ok := msg.(*protocol.Invocation); !ok || gi.InvocationID != "7" || gi.Target != "echo" || len(gi.Arguments) != 1 {
				t.Errorf("upstream body parses as %#v", msg)
			}
			if c := r.next(t); c.InvocationID != "7" || c.Error != "" {
				t.Errorf("completion %+v", c)
			}
		})
	}
}

func TestOrderingPerConnection(t *testing.T) {
	for _, par := range []int{1, 4} {
		t.Run("parallelism "+strconv.Itoa(par), func(t *testing.T) {
			release := make(chan struct{})
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-ASRS-Event") == "connected" {
					<-release
				}
			})
			u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), Parallelism: par})
			r := newReplies(protocol.JSON())
			s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
			s.Connected()
			if ev := f.next(t).Header.Get("X-ASRS-Event"); ev != "connected" {
				t.Fatalf("first event %q", ev)
			}
			for i := range 5 {
				s.Invoke(&protocol.Invocation{InvocationID: strconv.Itoa(i), Target: "m" + strconv.Itoa(i)})
			}
			s.Disconnected("")
			if n := f.count(); n != 1 {
				t.Fatalf("%d requests while connected is in flight, want 1", n)
			}
			close(release)
			var events []string
			for range 6 {
				events = append(events, f.next(t).Header.Get("X-ASRS-Event"))
			}
			if events[5] != "disconnected" {
				t.Errorf("events %v: disconnected is not last", events)
			}
			if par == 1 && strings.Join(events, " ") != "m0 m1 m2 m3 m4 disconnected" {
				t.Errorf("events %v, want invocations in order then disconnected", events)
			}
			for range 5 {
				r.next(t)
			}
		})
	}
}

func TestDisconnectedWaitsForInFlightInvocations(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-ASRS-Category") == "messages" {
			<-release
		}
	})
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), Parallelism: 3})
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, nil)
	s.Connected()
	f.next(t)
	for i := range 3 {
		s.Invoke(&protocol.Invocation{Target: "m" + strconv.Itoa(i)})
	}
	for range 3 { // three in flight at once
		f.next(t)
	}
	s.Disconnected("")
	s.Invoke(&protocol.Invocation{Target: "after"}) // dropped: the connection is gone
	select {
	case r := <-f.reqs:
		t.Fatalf("%s sent while invocations were in flight", r.Header.Get("X-ASRS-Event"))
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if ev := f.next(t).Header.Get("X-ASRS-Event"); ev != "disconnected" {
		t.Errorf("event %q, want disconnected", ev)
	}
}

func TestConnectedRetriedOn503(t *testing.T) {
	var calls int
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-ASRS-Event") == "connected" {
			calls++ // handler calls for one connection are sequential
			if calls <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}
	})
	logs := &logBuffer{}
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), RetryMinBackoff: time.Millisecond, RetryMaxBackoff: 4 * time.Millisecond, Logger: logs.logger()})
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, nil)
	s.Connected()
	s.Invoke(&protocol.Invocation{Target: "after"})
	var events []string
	for range 4 {
		events = append(events, f.next(t).Header.Get("X-ASRS-Event"))
	}
	if strings.Join(events, " ") != "connected connected connected after" {
		t.Errorf("events %v", events)
	}
	st := u.Stats()
	if st.Retries != 2 || st.Failures != 2 || st.Requests != 4 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "the function failed") {
		t.Errorf("logs: %s", logs.String())
	}
}

func TestEventRetriesAreBounded(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), RetryAttempts: 3, RetryMinBackoff: time.Millisecond})
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, nil)
	s.Connected()
	s.Disconnected("")
	for _, want := range []string{"connected", "connected", "connected", "disconnected", "disconnected", "disconnected"} {
		if ev := f.next(t).Header.Get("X-ASRS-Event"); ev != want {
			t.Fatalf("event %q, want %q", ev, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := u.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 6 {
		t.Errorf("%d requests, want 6", n)
	}
	if st := u.Stats(); st.Retries != 4 {
		t.Errorf("retries %d, want 4", st.Retries)
	}
}

func TestEventNotRetriedOn4xx(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), RetryMinBackoff: time.Millisecond})
	u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, nil).Connected()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := u.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestNonBlockingInvocationFailureIsLoggedOnly(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	logs := &logBuffer{}
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL}), Logger: logs.logger()})
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	s.Invoke(&protocol.Invocation{Target: "fire"})
	s.Invoke(&protocol.Invocation{InvocationID: "2", Target: "sync"})
	if c := r.next(t); c.InvocationID != "2" {
		t.Errorf("reply for %q, want only the invocation with id 2", c.InvocationID)
	}
	if n := f.count(); n != 2 {
		t.Errorf("%d requests, want 2 (no retry)", n)
	}
	if !strings.Contains(logs.String(), "event=fire") {
		t.Errorf("the failed non-blocking call is not logged: %s", logs.String())
	}
}

func TestCloseAfterDrainAndRejectsNewWork(t *testing.T) {
	f := newFake(t, nil)
	u, err := New(Options{Rules: ParseRules([]string{f.srv.URL})})
	if err != nil {
		t.Fatal(err)
	}
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	s.Connected()
	s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "x"})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := u.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := f.count(); n != 2 {
		t.Errorf("Close returned before queued work was delivered: %d requests", n)
	}
	r.next(t)
	s.Invoke(&protocol.Invocation{InvocationID: "2", Target: "x"})
	if c := r.next(t); c.Error != ErrTextShutdown {
		t.Errorf("after Close: %+v", c)
	}
	if f.count() != 2 {
		t.Error("work after Close reached the upstream")
	}
}

func TestCloseCancelsStalledCalls(t *testing.T) {
	f := newFake(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	u, err := New(Options{Rules: ParseRules([]string{f.srv.URL})})
	if err != nil {
		t.Fatal(err)
	}
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "x"})
	s.Invoke(&protocol.Invocation{InvocationID: "2", Target: "x"})
	f.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := u.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	for range 2 {
		if c := r.next(t); c.Error != ErrTextShutdown {
			t.Errorf("completion %+v, want %q", c, ErrTextShutdown)
		}
	}
}

// TestKeepAliveAndWireNames: sequential calls share one pooled connection, and the X-ASRS-*
// names go out spelled as the emulator spells them.
func TestKeepAliveAndWireNames(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns int
		raw   bytes.Buffer
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns++
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(io.TeeReader(c, lockedWriter{&mu, &raw}))
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	u, err := New(Options{Rules: ParseRules([]string{"http://" + ln.Addr().String()})})
	if err != nil {
		t.Fatal(err)
	}
	r := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c", Hub: "chat", Protocol: protocol.JSON()}, r.fn)
	for i := range 20 {
		s.Invoke(&protocol.Invocation{InvocationID: strconv.Itoa(i), Target: "x"})
		if c := r.next(t); c.Error != "" {
			t.Fatalf("completion %+v", c)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := u.Close(ctx); err != nil { // also closes the idle pooled connection
		t.Fatal(err)
	}
	_ = ln.Close()
	wg.Wait()
	if conns != 1 {
		t.Errorf("%d upstream connections for 20 sequential calls, want 1", conns)
	}
	for _, name := range []string{"X-ASRS-Connection-Id: c\r\n", "X-ASRS-Hub: chat\r\n", "X-ASRS-Category: messages\r\n", "X-ASRS-Event: x\r\n"} {
		if !strings.Contains(raw.String(), name) {
			t.Errorf("request bytes lack %q", name)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
