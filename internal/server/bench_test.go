package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/protocol"
)

// BenchmarkBroadcast measures one broadcast to many idle WebSocket clients (hand-
// written clients that only read), one message at a time: the uncoalesced worst case.
func BenchmarkBroadcast(b *testing.B) {
	t := &testing.T{}
	ts := startServerB(b)
	tok := ts.tokenB(b)
	const n = 200
	var received atomic.Int64
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		nc := rawWSDial(ts, tok)
		conns = append(conns, nc)
		go func() {
			br := bufio.NewReader(nc)
			buf := make([]byte, 4096)
			for {
				k, err := br.Read(buf)
				if err != nil {
					return
				}
				received.Add(int64(k))
			}
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	waitFor(t, 5*time.Second, "registrations", func() bool { return ts.s.Registry().ConnectionCount("chat") == n })
	frameLen := int64(len(`{"type":1,"target":"m","arguments":["xxxxxxxxxxxxxxxx"]}`) + 1 + 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := received.Load()
		broadcast(ts.s, "chat", "m", "xxxxxxxxxxxxxxxx")
		for received.Load()-start < frameLen*n {
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
	_ = io.EOF
}

// discardWriter is a ResponseWriter that keeps only the status, so that a benchmark
// measures the handler and not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// restBenchUsers connects users WebSocket clients (users u0, u1, ...) that count the
// messages they receive, and returns each user's send path with its query and a
// REST token for it.
func restBenchUsers(b *testing.B, ts *testServer, users int) (received *atomic.Int64, paths, tokens []string) {
	t := &testing.T{}
	received = new(atomic.Int64)
	for i := range users {
		user := "u" + strconv.Itoa(i)
		rw := ts.dialRaw("chat", user)
		rw.handshake()
		_ = rw.nc.SetReadDeadline(time.Time{})
		go func() {
			buf := make([]byte, 4096)
			for {
				k, err := rw.nc.Read(buf)
				if err != nil {
					return
				}
				// Messages, not bytes: the server may coalesce several into one frame.
				received.Add(int64(bytes.Count(buf[:k], []byte{0x1e})))
			}
		}()
		path := "/api/hubs/chat/users/" + user + "/:send?api-version=2022-06-01"
		tok, err := auth.NewToken(testKey, auth.TokenOptions{Audience: auth.RESTAudience(ts.url, path)})
		if err != nil {
			b.Fatal(err)
		}
		paths, tokens = append(paths, path), append(tokens, tok)
	}
	waitFor(t, 5*time.Second, "registrations", func() bool { return ts.s.Registry().ConnectionCount("chat") == users })
	return received, paths, tokens
}

// restBenchBody is the body of a bench send (the bench's arguments: time, sequence
// and a 64-byte string).
var restBenchBody = []byte(`{"target":"bench","arguments":[1764755000000000000,12345,"` + strings.Repeat("x", 64) + `"]}`)

// waitReceived waits until the clients have received n messages more than start:
// the deliveries are part of the cost.
func waitReceived(b *testing.B, received *atomic.Int64, start, n int64) {
	deadline := time.Now().Add(10 * time.Second)
	for received.Load()-start < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Microsecond)
	}
	if got := received.Load() - start; got < n {
		b.Fatalf("received %d messages, want %d", got, n)
	}
}

// BenchmarkRESTSendUser measures the server's side of one REST send-to-user (S3 of
// docs/performance.md) without net/http: routing, authentication with a reused token
// (an SDK keeps its tokens; the server caches verified ones), body parsing, the user
// lookup and the delivery to the user's WebSocket, whose frames the clients read.
func BenchmarkRESTSendUser(b *testing.B) {
	ts := startServerB(b)
	const users = 32
	received, paths, tokens := restBenchUsers(b, ts, users)
	reqs := make([]*http.Request, users)
	for i := range users {
		reqs[i] = httptest.NewRequest(http.MethodPost, paths[i], nil)
		reqs[i].Header.Set("Authorization", "Bearer "+tokens[i])
		reqs[i].Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	h := ts.s.Handler()
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(nil)
	start := received.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := reqs[i%users]
		rd.Reset(restBenchBody)
		r.Body = io.NopCloser(rd)
		r.ContentLength = int64(len(restBenchBody))
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, r)
		if w.status != http.StatusAccepted {
			b.Fatalf("status %d", w.status)
		}
	}
	waitReceived(b, received, start, int64(b.N))
	b.StopTimer()
}

// BenchmarkRESTSendUserHTTP is BenchmarkRESTSendUser through net/http on a loopback
// keep-alive connection: the whole of the server's side of a request (reading and
// parsing it, the handler, the response, the delivery). The caller writes
// pre-rendered requests and reads each answer with a bufio.Reader, as the bench's
// caller does, so that in a callgrind profile of the process nearly all the
// instructions are the server's.
func BenchmarkRESTSendUserHTTP(b *testing.B) {
	ts := startServerB(b)
	const users = 32
	received, paths, tokens := restBenchUsers(b, ts, users)
	u, _ := url.Parse(ts.url)
	reqs := make([][]byte, users)
	for i := range users {
		reqs[i] = append([]byte("POST "+paths[i]+" HTTP/1.1\r\nHost: "+u.Host+"\r\nAuthorization: Bearer "+tokens[i]+
			"\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: "+strconv.Itoa(len(restBenchBody))+"\r\n\r\n"),
			restBenchBody...)
	}
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	start := received.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := nc.Write(reqs[i%users]); err != nil {
			b.Fatal(err)
		}
		// The answer of a send has no body: its head is all there is to read.
		line, err := br.ReadSlice('\n')
		if err != nil || !bytes.HasPrefix(line, []byte("HTTP/1.1 202 ")) {
			b.Fatalf("answer %q: %v", line, err)
		}
		for len(line) > 2 {
			if line, err = br.ReadSlice('\n'); err != nil {
				b.Fatal(err)
			}
			if bytes.HasPrefix(line, []byte("Content-Length: ")) && string(line) != "Content-Length: 0\r\n" {
				b.Fatalf("answer with a body: %q", line)
			}
		}
	}
	waitReceived(b, received, start, int64(b.N))
	b.StopTimer()
}

// BenchmarkConnect measures one full connect (S5 of docs/performance.md): negotiate,
// WebSocket upgrade and the JSON handshake, then the close. The client side is the
// tests' hand-written one; 64 users reuse their tokens, as reconnecting clients do.
func BenchmarkConnect(b *testing.B) {
	t := &testing.T{}
	ts := startServerB(b)
	for i := range 64 {
		ts.token("chat", "u"+strconv.Itoa(i)) // signed before the timer starts
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rw := ts.dialRaw("chat", "u"+strconv.Itoa(i%64))
		rw.handshake()
		rw.nc.Close()
	}
	waitFor(t, 10*time.Second, "closes", func() bool { return ts.s.Registry().ConnectionCount("chat") == 0 })
}

// BenchmarkQueueBusyWriters measures what a broadcast costs per recipient when every
// recipient's writer is busy with an earlier write (the saturated S1 rows: most
// frames join a write in progress): the outbox push, the counters, the timestamps.
// The outboxes are emptied every 64 broadcasts, as their writers would. With 10,000
// recipients (the overload row's) their connections and outboxes no longer fit in
// the caches: each recipient's cost is then mostly the cache lines it touches.
func BenchmarkQueueBusyWriters(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("conns="+strconv.Itoa(n), func(b *testing.B) { benchmarkQueueBusyWriters(b, n) })
	}
}

func benchmarkQueueBusyWriters(b *testing.B, n int) {
	s, err := New(fastConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]*conn, 0, n)
	for range n {
		c, _, _ := s.newConn("chat", &auth.Principal{}, "", "127.0.0.1", 1)
		if first, _, msg := s.attach(c, transport.WebSockets, ""); !first {
			b.Fatal(msg)
		}
		c.proto = protocol.JSON()
		c.metrics = s.metrics.ConnOpened("chat", "WebSockets", "json")
		c.ws = &fakeWS{}
		c.writerOn.Store(true) // a writer is busy
		c.handshaken.Store(true)
		s.registry.Add(c)
		conns = append(conns, c)
	}
	arg, _ := protocol.ValueOf(strings.Repeat("x", 64))
	inv := &protocol.Invocation{Target: "m", Arguments: []protocol.Value{arg}}
	spare := make([][]byte, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.registry.SendAll("chat", hub.NewPayload(inv), nil)
		if i%64 == 63 {
			b.StopTimer()
			for j, c := range conns {
				batch, _ := c.out.TakeFramed(spare[j])
				spare[j] = batch[:0] // as a writer passes its last batch back
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
}
