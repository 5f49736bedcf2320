package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/protocol"
)

// The upstream scenario's function app answers signed invocations on one keep-alive
// connection, refuses an unsigned one as the Trigger does, and closes when asked to.
func TestUpstreamStubServesKeepAlive(t *testing.T) {
	stub, err := startUpstreamStub("stub-key", "bench")
	if err != nil {
		t.Fatal(err)
	}
	defer stub.close()
	addr := strings.TrimPrefix(stub.url, "http://")
	addr = addr[:strings.IndexByte(addr, '/')]
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	post := func(id, sig string, close bool) *http.Response {
		t.Helper()
		body := `{"type":1,"invocationId":"` + id + `","target":"echo","arguments":["hi` + id + `"]}`
		req, _ := http.NewRequest(http.MethodPost, stub.url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(functions.HeaderHub, "bench")
		req.Header.Set(functions.HeaderCategory, functions.CategoryMessages)
		req.Header.Set(functions.HeaderEvent, "echo")
		req.Header.Set(functions.HeaderConnectionID, "conn-"+id)
		req.Header.Set(functions.HeaderSignature, sig)
		req.Close = close
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, id := range []string{"1", "2", "3"} {
		resp := post(id, auth.UpstreamSignature([]string{"stub-key"}, "conn-"+id), false)
		body, _ := io.ReadAll(resp.Body)
		m, err := protocol.JSON().ParseUnframed(body[:len(body)-1])
		if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("call %s: %d %q close=%t: %v", id, resp.StatusCode, body, resp.Close, err)
		}
		if c, ok := m.(*protocol.Completion); !ok || c.InvocationID != id || c.Result.String() != `"hi`+id+`"` {
			t.Fatalf("call %s: answer %q", id, body)
		}
	}
	resp := post("4", auth.UpstreamSignature([]string{"other-key"}, "conn-4"), false)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), functions.UnauthorizedSignatureText) {
		t.Fatalf("wrong key: %d %q", resp.StatusCode, body)
	}
	resp = post("5", auth.UpstreamSignature([]string{"stub-key"}, "conn-5"), true)
	_, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Fatalf("Connection: close: %d close=%t", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the stub kept the connection after Connection: close: %v", err)
	}
}

// BenchmarkUpstreamStub is one echo call through the upstream scenario's function app
// over loopback, served by net/http's Server (as before) and by stubServer; the client
// side (one write, http.ReadResponse) is the same for both.
func BenchmarkUpstreamStub(b *testing.B) {
	trigger, err := functions.NewTrigger(functions.TriggerOptions{AccessKeys: []string{"stub-key"}})
	if err != nil {
		b.Fatal(err)
	}
	trigger.HandleMessage("bench", "echo", functions.MessageFunc(func(_ context.Context, ic *functions.InvocationContext) (any, error) {
		return ic.Arguments[0], nil
	}))
	body := `{"type":1,"invocationId":"7","target":"echo","arguments":[1764770000000000000,"` + strings.Repeat("x", 64) + `"]}`
	head := "POST /runtime/webhooks/signalr HTTP/1.1\r\nHost: x\r\nUser-Agent: Go-http-client/1.1\r\nContent-Type: application/json\r\n" +
		"X-ASRS-Category: messages\r\nX-ASRS-Connection-Id: conn-1\r\nX-ASRS-Event: echo\r\nX-ASRS-Hub: bench\r\n" +
		"X-ASRS-Signature: " + auth.UpstreamSignature([]string{"stub-key"}, "conn-1") + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	req := []byte(head + body)
	for _, bc := range []struct {
		name  string
		serve func(net.Listener) func()
	}{
		{"nethttp", func(ln net.Listener) func() {
			srv := &http.Server{Handler: trigger}
			go func() { _ = srv.Serve(ln) }()
			return func() { _ = srv.Close() }
		}},
		{"stubServer", func(ln net.Listener) func() {
			srv := newStubServer(ln, trigger)
			go srv.serve()
			return srv.close
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer bc.serve(ln)()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
					b.Fatal(resp.StatusCode, err)
				}
			}
		})
	}
}

// After an answer the stub waits for the connection to become readable before it
// reads the next request. A request that is already in the socket when the wait
// begins, its readiness perhaps taken in by the poller, must end the wait at once
// rather than at the idle deadline.
func TestAwaitWriterRequestAlreadyThere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
	w := newAwaitWriter(server)
	if w.rc == nil {
		t.Skip("no RawConn on this platform")
	}
	// The answer goes through a conn whose Write returns once the client has read it
	// and sent the next request, then lets the poller run.
	sent := make(chan struct{})
	go func() {
		b := make([]byte, 2)
		for {
			if _, err := io.ReadFull(client, b); err != nil {
				return
			}
			if _, err := client.Write([]byte("next")); err != nil {
				return
			}
			sent <- struct{}{}
		}
	}()
	w.c = &requestedConn{Conn: server, sent: sent}
	in := make([]byte, 4)
	for i := range 3 {
		if err := w.write([]byte("ok"), true); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if _, err := io.ReadFull(server, in); err != nil || string(in) != "next" {
			t.Fatalf("request %d: %q %v", i, in, err)
		}
	}
}

// requestedConn's Write returns after the peer's next request has arrived and the
// goroutine has parked once (so the scheduler polls the network).
type requestedConn struct {
	net.Conn
	sent <-chan struct{}
}

func (c *requestedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil {
		<-c.sent
		time.Sleep(5 * time.Millisecond) // not awaiting a signal: lets the poller take in the readiness
	}
	return n, err
}

// stubRequests are requests as the upstream client sends them and variations the stub
// must read as http.ReadRequest does.
var stubRequests = []string{
	"POST /runtime/webhooks/signalr HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n" +
		"X-ASRS-Category: messages\r\nX-ASRS-Connection-Id: conn-1\r\nX-ASRS-Event: echo\r\nX-ASRS-Hub: bench\r\n" +
		"X-ASRS-Signature: sha256=abc\r\nContent-Length: 5\r\n\r\nhello",
	"POST /runtime/webhooks/signalr?code=k&x=1 HTTP/1.1\r\nhost: h\r\nx-asrs-hub:  bench \t\r\nX-Multi: a\r\nx-multi: b\r\n" +
		"Connection: keep-alive, Close\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"GET /a%20b HTTP/1.0\r\nHost: h\r\nPragma: no-cache\r\n\r\n",
	"GET /x HTTP/1.0\nConnection: keep-alive\nHost: h\n\n",
	"POST http://example.com/runtime/webhooks/signalr HTTP/1.1\r\nHost: other\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: h\r\nEmpty:\r\nContent-Length: 0\r\n\r\n",
}

// The stub's request reader gives the handler what http.ReadRequest gives, request
// after request on one connection (the body of one does not leak into the next).
func TestStubReaderReadsAsNetHTTP(t *testing.T) {
	var all string
	for _, raw := range stubRequests {
		all += raw
	}
	want := bufio.NewReader(strings.NewReader(all))
	rr := newStubReader(strings.NewReader(all), "192.0.2.1:1234")
	for i := range stubRequests {
		w, err := http.ReadRequest(want)
		if err != nil {
			t.Fatalf("request %d: net/http: %v", i, err)
		}
		wbody, _ := io.ReadAll(w.Body)
		got, err := rr.read()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		// Half of the body is read by the handler, the rest is discarded by the server.
		half := make([]byte, len(wbody)/2)
		if _, err := io.ReadFull(got.Body, half); err != nil {
			t.Fatalf("request %d: body: %v", i, err)
		}
		rest, err := io.ReadAll(got.Body)
		if err != nil || string(half)+string(rest) != string(wbody) {
			t.Fatalf("request %d: body %q%q, want %q (%v)", i, half, rest, wbody, err)
		}
		if err := rr.discardBody(); err != nil {
			t.Fatalf("request %d: discard: %v", i, err)
		}
		if got.Method != w.Method || got.URL.String() != w.URL.String() || got.Proto != w.Proto ||
			got.ProtoMajor != w.ProtoMajor || got.ProtoMinor != w.ProtoMinor || got.Host != w.Host ||
			got.ContentLength != w.ContentLength || got.Close != w.Close || got.RequestURI != w.RequestURI ||
			!reflect.DeepEqual(got.TransferEncoding, w.TransferEncoding) || got.RemoteAddr != "192.0.2.1:1234" {
			t.Errorf("request %d: got %s %s %s %d.%d host %q len %d close %t uri %q te %q, want %s %s %s %d.%d host %q len %d close %t uri %q te %q",
				i, got.Method, got.URL, got.Proto, got.ProtoMajor, got.ProtoMinor, got.Host, got.ContentLength, got.Close, got.RequestURI, got.TransferEncoding,
				w.Method, w.URL, w.Proto, w.ProtoMajor, w.ProtoMinor, w.Host, w.ContentLength, w.Close, w.RequestURI, w.TransferEncoding)
		}
		if !reflect.DeepEqual(got.Header, w.Header) {
			t.Errorf("request %d: header %q, want %q", i, got.Header, w.Header)
		}
	}
	if _, err := rr.read(); err != io.EOF {
		t.Fatalf("after the last request: %v, want io.EOF", err)
	}
}

// Malformed requests are errors (answered 400 by the stub), as with http.ReadRequest,
// or where RFC 9112 lets a server refuse what net/http tolerates (folded lines, a
// name with a space, a length beside a Transfer-Encoding).
func TestStubReaderRejectsMalformed(t *testing.T) {
	for _, raw := range []string{
		"\r\nPOST / HTTP/1.1\r\n\r\n",
		"POST /\r\n\r\n",
		"POST / HTTP/1.1 x\r\n\r\n",
		"POST / HTTP/x.y\r\n\r\n",
		"PO(ST / HTTP/1.1\r\n\r\n",
		"POST  HTTP/1.1\r\n\r\n",
		"POST nopath HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nNoColon\r\n\r\n",
		"POST / HTTP/1.1\r\n: empty name\r\n\r\n",
		"POST / HTTP/1.1\r\nBad\x01: x\r\n\r\n",
		"POST / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
		"POST / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
		"POST / HTTP/1.1\r\nA B: x\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx",
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\n", // cut off
		"POST / HTTP/1.1\r\nX: " + strings.Repeat("x", maxStubHead) + "\r\n\r\n",
	} {
		rr := newStubReader(strings.NewReader(raw), "")
		if req, err := rr.read(); err == nil || err == io.EOF {
			t.Errorf("%.60q: read %v, %v; want an error", raw, req, err)
		}
	}
}

// A malformed request gets 400 and the connection is closed.
func TestUpstreamStubAnswersMalformed400(t *testing.T) {
	stub, err := startUpstreamStub("stub-key", "bench")
	if err != nil {
		t.Fatal(err)
	}
	defer stub.close()
	addr := strings.TrimPrefix(stub.url, "http://")
	c, err := net.Dial("tcp", addr[:strings.IndexByte(addr, '/')])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "POST "+functions.TriggerPath+" HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 400 ") || !strings.Contains(string(got), "Connection: close") {
		t.Fatalf("answer %q, %v", got, err)
	}
}

// BenchmarkStubReadRequest is reading one upstream request (the bench's echo call)
// from a buffered connection: http.ReadRequest as the stub did, and stubReader.
func BenchmarkStubReadRequest(b *testing.B) {
	body := `{"type":1,"invocationId":"7","target":"echo","arguments":[1764770000000000000,"` + strings.Repeat("x", 64) + `"]}`
	raw := "POST /runtime/webhooks/signalr HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n" +
		"X-ASRS-Category: messages\r\nX-ASRS-Connection-Id: conn-1\r\nX-ASRS-Event: echo\r\nX-ASRS-Hub: bench\r\n" +
		"X-ASRS-Signature: " + auth.UpstreamSignature([]string{"stub-key"}, "conn-1") + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	src := &repeatReader{b: []byte(raw)}
	b.Run("ReadRequest", func(b *testing.B) {
		br := bufio.NewReaderSize(src, 4096)
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.ReadRequest(br)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stubReader", func(b *testing.B) {
		rr := newStubReader(src, "")
		b.ReportAllocs()
		for b.Loop() {
			req, err := rr.read()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// repeatReader reads b over and over.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

// The function app's worker runs with one P and a GC percent of 400 while it
// serves, and gives the process its settings back when it returns.
func TestUpstreamWorkerRuntimeSettings(t *testing.T) {
	gcPercent := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }
	procs0, gc0 := runtime.GOMAXPROCS(0), gcPercent()
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeUpstreamWorker(context.Background(), stdinR, stdoutW, nil) }()
	if _, err := io.WriteString(stdinW, `{"key":"stub-key","hub":"bench"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	ready, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil || !strings.Contains(ready, `"phase":"ready"`) {
		t.Fatalf("ready report %q: %v", ready, err)
	}
	procs, gc := runtime.GOMAXPROCS(0), gcPercent()
	_ = stdinW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not end when its stdin closed")
	}
	if procs != functionAppProcs || gc != functionAppGCPercent {
		t.Errorf("serving with GOMAXPROCS %d, GC percent %d; want %d, %d", procs, gc, functionAppProcs, functionAppGCPercent)
	}
	if p, g := runtime.GOMAXPROCS(0), gcPercent(); p != procs0 || g != gc0 {
		t.Errorf("after: GOMAXPROCS %d, GC percent %d; want %d, %d as before", p, g, procs0, gc0)
	}
}

// FuzzStubReader: whatever arrives, the stub's reader never panics and ends (a body
// is read to its end or to an error); a request it accepts, net/http accepts too, with
// the same method, target, version and content length, and a body (trailer included)
// that net/http fails to read, the stub fails to read too (the reader is meant to be
// stricter than net/http, never looser).
func FuzzStubReader(f *testing.F) {
	for _, raw := range stubRequests {
		f.Add(raw)
	}
	f.Add("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab")
	f.Add("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		rr := newStubReader(strings.NewReader(raw), "192.0.2.1:1234")
		got, err := rr.read()
		if err != nil {
			return
		}
		_, gerr := io.Copy(io.Discard, got.Body)
		if gerr == nil {
			gerr = rr.discardBody() // a chunked body's trailer section
		}
		w, werr := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if werr != nil {
			t.Fatalf("the stub accepted what net/http refuses (%v): %q", werr, raw)
		}
		if got.Method != w.Method || got.RequestURI != w.RequestURI || got.Proto != w.Proto ||
			got.ContentLength != w.ContentLength {
			t.Fatalf("stub %s %q %s len %d, net/http %s %q %s len %d: %q",
				got.Method, got.RequestURI, got.Proto, got.ContentLength, w.Method, w.RequestURI, w.Proto, w.ContentLength, raw)
		}
		if _, werr := io.Copy(io.Discard, w.Body); werr != nil && gerr == nil {
			t.Fatalf("body: stub %v, net/http %v: %q", gerr, werr, raw)
		}
	})
}
