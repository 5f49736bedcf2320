package transport

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestOutboxCoalescesAndBounds(t *testing.T) {
	o := NewOutbox(3, 10, nil)
	if !o.Idle() {
		t.Fatal("a new outbox is not idle")
	}
	if !o.Push([]byte("ab")) || !o.Push([]byte("cd")) {
		t.Fatal("push refused")
	}
	select {
	case <-o.Ready():
	default:
		t.Fatal("not ready after push")
	}
	if o.Push([]byte("0123456789")) {
		t.Fatal("byte budget not enforced")
	}
	if !o.Push([]byte("ef")) || o.Push([]byte("g")) {
		t.Fatal("frame budget not enforced")
	}
	batch, sealed := o.Take(nil)
	if string(batch) != "abcdef" || sealed || o.Len() != 0 || !o.Idle() {
		t.Fatalf("batch %q sealed %v", batch, sealed)
	}
	// One frame over the byte budget still goes through an empty queue.
	if !o.Push(bytes.Repeat([]byte("x"), 50)) {
		t.Fatal("large frame refused by an empty queue")
	}
	batch, _ = o.Take(batch)
	if len(batch) != 50 {
		t.Fatalf("batch %d bytes", len(batch))
	}
	if !o.Seal([]byte("bye")) || o.Seal([]byte("again")) || o.Idle() {
		t.Fatal("seal")
	}
	if o.Push([]byte("late")) {
		t.Fatal("push after seal")
	}
	batch, sealed = o.Take(nil)
	if string(batch) != "bye" || !sealed || !o.Sealed() || o.Idle() {
		t.Fatalf("final batch %q sealed %v", batch, sealed)
	}
}

func TestAppendSSEEvent(t *testing.T) {
	cases := map[string]string{
		"{}\x1e":     "data: {}\x1e\r\n\r\n",
		"a\nb":       "data: a\r\ndata: b\r\n\r\n",
		"a\r\nb\r\n": "data: a\r\ndata: b\r\ndata: \r\n\r\n",
		"x\n\ny":     "data: x\r\ndata: \r\ndata: y\r\n\r\n",
		"only\r":     "data: only\r\n\r\n",
	}
	for in, want := range cases {
		if got := string(AppendSSEEvent(nil, []byte(in))); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func FuzzAppendSSEEvent(f *testing.F) {
	for _, s := range []string{"", "a", "a\nb", "a\r\nb", "\n\n", "\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev := string(AppendSSEEvent(nil, payload))
		if !strings.HasSuffix(ev, "\r\n\r\n") {
			t.Fatalf("event %q does not end with an empty line", ev)
		}
		// Reassembling the data lines gives the payload with CRs before LFs dropped.
		var lines []string
		for _, l := range strings.Split(strings.TrimSuffix(ev, "\r\n\r\n"), "\r\n") {
			d, ok := strings.CutPrefix(l, "data: ")
			if !ok {
				t.Fatalf("line %q in %q", l, ev)
			}
			lines = append(lines, d)
		}
		want := strings.TrimSuffix(strings.ReplaceAll(string(payload), "\r\n", "\n"), "\r")
		if got := strings.Join(lines, "\n"); got != want && !strings.Contains(string(payload), "\r") {
			t.Fatalf("reassembled %q, want %q", got, want)
		}
	})
}

func TestStartSSE(t *testing.T) {
	rec := httptest.NewRecorder()
	s, err := StartSSE(rec, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]byte("{}\x1e")); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/event-stream" || rec.Header().Get("Cache-Control") != "no-cache,no-store" ||
		rec.Header().Get("Content-Encoding") != "identity" || rec.Header().Get("Pragma") != "no-cache" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if got := rec.Body.String(); got != ":\r\ndata: {}\x1e\r\n\r\n" {
		t.Fatalf("body %q", got)
	}
	if !rec.Flushed {
		t.Fatal("not flushed")
	}
}

func TestPoller(t *testing.T) {
	var p Poller
	if pending, _ := p.Activity(); pending {
		t.Fatal("pending before any poll")
	}
	a := p.Begin()
	b := p.Begin()
	select {
	case <-a.Replaced():
	default:
		t.Fatal("first poll not replaced")
	}
	a.End(time.Now())
	if pending, _ := p.Activity(); !pending {
		t.Fatal("ending a replaced poll cleared the current one")
	}
	end := time.Now()
	b.End(end)
	pending, last := p.Activity()
	if pending || last.Before(end) {
		t.Fatalf("pending %v last %v", pending, last)
	}
}

func TestIsWebSocketUpgrade(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Upgrade", "WebSocket")
	r.Header.Set("Connection", "keep-alive, Upgrade")
	if !IsWebSocketUpgrade(r) {
		t.Fatal("upgrade not recognised")
	}
	r.Header.Del("Connection")
	if IsWebSocketUpgrade(r) {
		t.Fatal("upgrade without Connection: upgrade")
	}
	if IsWebSocketUpgrade(httptest.NewRequest("GET", "/", nil)) {
		t.Fatal("plain GET")
	}
	_ = http.MethodGet
}
