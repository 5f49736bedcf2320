package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
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
