package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
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

// BenchmarkRESTSendUser measures the server's side of one REST send-to-user (S3 of
// docs/performance.md) without net/http: routing, authentication with a reused token
// (an SDK keeps its tokens; the server caches verified ones), body parsing, the user
// lookup and the delivery to the user's WebSocket, whose frames the clients read.
func BenchmarkRESTSendUser(b *testing.B) {
	t := &testing.T{}
	ts := startServerB(b)
	const users = 32
	var received atomic.Int64
	reqs := make([]*http.Request, users)
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
		path := "/api/hubs/chat/users/" + user + "/:send"
		tok, err := auth.NewToken(testKey, auth.TokenOptions{Audience: auth.RESTAudience(ts.url, path+"?api-version=2022-06-01")})
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = httptest.NewRequest(http.MethodPost, path+"?api-version=2022-06-01", nil)
		reqs[i].Header.Set("Authorization", "Bearer "+tok)
		reqs[i].Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	waitFor(t, 5*time.Second, "registrations", func() bool { return ts.s.Registry().ConnectionCount("chat") == users })
	body := []byte(`{"target":"bench","arguments":[1764755000000000000,12345,"` + strings.Repeat("x", 64) + `"]}`)
	h := ts.s.Handler()
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(nil)
	start := received.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := reqs[i%users]
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		r.ContentLength = int64(len(body))
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, r)
		if w.status != http.StatusAccepted {
			b.Fatalf("status %d", w.status)
		}
	}
	// The deliveries are part of the cost: wait until the clients have them all.
	deadline := time.Now().Add(10 * time.Second)
	for received.Load()-start < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Microsecond)
	}
	b.StopTimer()
	if got := received.Load() - start; got < int64(b.N) {
		b.Fatalf("received %d messages, want %d", got, b.N)
	}
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
