package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// quickOf runs readQuickReply over data as one buffered read would hold it.
func quickOf(t testing.TB, data []byte) (quickReply, *bufio.Reader, bool) {
	br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
	if _, err := br.Peek(1); err != nil {
		return quickReply{}, br, false
	}
	before := br.Buffered()
	q, ok := readQuickReply(br)
	if br.Buffered() != before {
		t.Fatalf("readQuickReply consumed input")
	}
	return q, br, ok
}

func TestQuickReply(t *testing.T) {
	for _, c := range []struct {
		name, in   string
		ok         bool
		status     int
		body       string
		close      bool
		leftBehind int
	}{
		{name: "completion", in: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello", ok: true, status: 200, body: "hello"},
		{name: "no reason", in: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi", ok: true, status: 200, body: "hi"},
		{name: "no content", in: "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", ok: true, status: 204},
		{name: "lower-case keys", in: "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: Close\r\n\r\nx", ok: true, status: 200, body: "x", close: true},
		{name: "keep-alive", in: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", ok: true, status: 200},
		{name: "pipelined bytes stay", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy", ok: true, status: 200, body: "x", leftBehind: 1},
		{name: "body not all there", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"},
		{name: "head not all there", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"},
		{name: "no length", in: "HTTP/1.1 200 OK\r\n\r\nhello"},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"},
		{name: "signed length", in: "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx"},
		{name: "interim", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{name: "error status", in: "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"},
		{name: "HTTP/1.0", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{name: "folded header", in: "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n"},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"},
		{name: "other connection token", in: "HTTP/1.1 200 OK\r\nConnection: upgrade\r\nContent-Length: 0\r\n\r\n"},
		{name: "204 with a body", in: "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, br, ok := quickOf(t, []byte(c.in))
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if q.status != c.status || string(q.body) != c.body || q.close != c.close {
				t.Fatalf("got status %d body %q close %v, want %d %q %v", q.status, q.body, q.close, c.status, c.body, c.close)
			}
			if _, err := br.Discard(q.n); err != nil {
				t.Fatal(err)
			}
			if br.Buffered() != c.leftBehind {
				t.Fatalf("%d bytes left behind, want %d", br.Buffered(), c.leftBehind)
			}
		})
	}
}

func TestQuickReplyAllocatesNothing(t *testing.T) {
	data := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nDate: Fri, 04 Dec 2026 08:00:00 GMT\r\nContent-Length: 5\r\n\r\nhello")
	br := bufio.NewReaderSize(bytes.NewReader(nil), 4096)
	r := bytes.NewReader(data)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(data)
		br.Reset(r)
		_, _ = br.Peek(1)
		if _, ok := readQuickReply(br); !ok {
			t.Fatal("not read")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per reply", allocs)
	}
}

// FuzzQuickReply holds readQuickReply to net/http: what it accepts, http.ReadResponse
// reads as the same status, body and keep-alive, ending at the same byte.
func FuzzQuickReply(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: \t y \t\r\nContent-Length: 0007\r\n\r\n1234567rest",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 204 \r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, _, ok := quickOf(t, data)
		if !ok {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if err != nil {
			t.Fatalf("quick read accepted what net/http refuses (%v): %q", err, data)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("net/http's body: %v", err)
		}
		if resp.StatusCode != q.status || !bytes.Equal(body, q.body) || resp.Close != q.close {
			t.Fatalf("quick: %d %q close %v; net/http: %d %q close %v; input %q", q.status, q.body, q.close, resp.StatusCode, body, resp.Close, data)
		}
		head := bytes.Index(data, []byte("\r\n\r\n")) + 4
		if q.n != head+len(body) {
			t.Fatalf("quick ends at %d, net/http at %d: %q", q.n, head+len(body), data)
		}
		if strings.Contains(resp.Header.Get("Transfer-Encoding"), "chunked") {
			t.Fatalf("quick read a chunked body: %q", data)
		}
	})
}

// The answers of net/http's server (a Go function app, functions/customhandler) are
// the common case the quick reader is for: if a change on either side made it fall
// back to http.ReadResponse for them, nothing else would notice.
func TestQuickReplyReadsNetHTTPAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/none" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte("{\"type\":3,\"invocationId\":\"1\",\"result\":\"pong\"}\x1e"))
	}))
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReaderSize(nc, 4096)
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/echo", 200, "{\"type\":3,\"invocationId\":\"1\",\"result\":\"pong\"}\x1e"},
		{"/none", 204, ""},
	} {
		req := "POST " + c.path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
		if _, err := nc.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		// The whole answer, as the quick reader needs it: one read may return part.
		for {
			if _, err := br.Peek(1); err != nil {
				t.Fatal(err)
			}
			b, _ := br.Peek(br.Buffered())
			if end := bytes.Index(b, []byte("\r\n\r\n")); end >= 0 && len(b) >= end+4+len(c.body) {
				break
			}
			if _, err := br.Peek(br.Buffered() + 1); err != nil {
				t.Fatal(err)
			}
		}
		q, ok := readQuickReply(br)
		if !ok {
			b, _ := br.Peek(br.Buffered())
			t.Fatalf("%s: net/http's answer left to net/http: %q", c.path, b)
		}
		if q.status != c.status || string(q.body) != c.body || q.close {
			t.Fatalf("%s: status %d, body %q, close %v", c.path, q.status, q.body, q.close)
		}
		if _, err := br.Discard(q.n); err != nil || br.Buffered() != 0 {
			t.Fatalf("%s: %d bytes left after the answer (%v)", c.path, br.Buffered(), err)
		}
	}
}
