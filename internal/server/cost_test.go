package server

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// rawWSDial opens a WebSocket with a hand-written upgrade so that the client side costs
// no goroutine, and completes the JSON hub handshake.
func rawWSDial(t *testing.T, ts *testServer, tok string) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(ts.url, "http://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var key [16]byte
	rand.Read(key[:])
	fmt.Fprintf(nc, "GET /client/?hub=chat&access_token=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", url.QueryEscape(tok), addr, base64.StdEncoding.EncodeToString(key[:]))
	br := bufio.NewReader(nc)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("upgrade: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	// One masked text frame (mask 0: payload unchanged) with the handshake.
	payload := []byte("{\"protocol\":\"json\",\"version\":1}\x1e")
	frame := append([]byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 2)
	if _, err := br.Read(hdr); err != nil { // the handshake response frame
		t.Fatal(err)
	}
	return nc
}

// TestIdleWebSocketCost keeps the per-connection cost of an idle WebSocket in check:
// one parked goroutine (its reader) and a bounded heap.
func TestIdleWebSocketCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 200 connections")
	}
	ts := startServer(t, nil)
	tok := ts.token("chat", "")
	const n = 200
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		conns = append(conns, rawWSDial(t, ts, tok))
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	waitFor(t, 5*time.Second, "registrations", func() bool { return ts.s.Registry().ConnectionCount("chat") == n })
	time.Sleep(50 * time.Millisecond) // let writers of the handshake responses exit
	perConn := float64(runtime.NumGoroutine()-g0) / n
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap := float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / n
	stack := float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
	t.Logf("per idle WebSocket: %.2f goroutines, %.0f B heap, %.0f B stack", perConn, heap, stack)
	if perConn > 1.05 {
		t.Fatalf("%.2f goroutines per idle connection, want 1", perConn)
	}
	if heap > 32<<10 {
		t.Fatalf("%.0f B heap per idle connection", heap)
	}
}
