package server

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// rawWS is a WebSocket client written against the socket itself: it costs the test
// process no goroutine, so the server's goroutines can be counted in-process.
type rawWS struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (ts *testServer) dialRaw(hubName, user string) *rawWS {
	ts.t.Helper()
	n := ts.negotiate(hubName, user)
	return ts.upgradeRaw(fmt.Sprintf("hub=%s&id=%s&access_token=%s", hubName, url.QueryEscape(n.ConnectionToken), url.QueryEscape(ts.token(hubName, user))))
}

// upgradeRaw opens a WebSocket to /client/?query.
func (ts *testServer) upgradeRaw(query string) *rawWS {
	ts.t.Helper()
	u, _ := url.Parse(ts.url)
	nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { nc.Close() })
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := fmt.Sprintf("GET /client/?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", query, u.Host, base64.StdEncoding.EncodeToString(key[:]))
	if _, err := io.WriteString(nc, req); err != nil {
		ts.t.Fatal(err)
	}
	rw := &rawWS{t: ts.t, nc: nc, br: bufio.NewReaderSize(nc, 512)}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(rw.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		ts.t.Fatalf("upgrade: %v %v", resp, err)
	}
	return rw
}

// send writes b as one masked text frame.
func (rw *rawWS) send(b []byte) {
	rw.t.Helper()
	if _, err := rw.nc.Write(maskedFrame(0x1, b)); err != nil {
		rw.t.Fatal(err)
	}
}

func maskedFrame(op byte, b []byte) []byte {
	f := []byte{0x80 | op}
	switch n := len(b); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	mask := []byte{1, 2, 3, 4}
	f = append(f, mask...)
	for i, c := range b {
		f = append(f, c^mask[i%4])
	}
	return f
}

// readMessage reads one unfragmented server message.
func (rw *rawWS) readMessage(timeout time.Duration) (op byte, payload []byte, err error) {
	_ = rw.nc.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(rw.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(rw.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = int(e[0])<<8 | int(e[1])
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(rw.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = int(e[4])<<24 | int(e[5])<<16 | int(e[6])<<8 | int(e[7])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(rw.br, payload)
	return h[0] & 0x0f, payload, err
}

// handshake completes the JSON hub handshake.
func (rw *rawWS) handshake() {
	rw.t.Helper()
	rw.send(protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: "json", Version: 1}))
	_, p, err := rw.readMessage(5 * time.Second)
	if err != nil || !bytes.Equal(p, []byte("{}\x1e")) {
		rw.t.Fatalf("handshake response %q %v", p, err)
	}
}

// waitClose reads until the server's Close frame (or EOF) and returns the hub Close
// message text seen before it.
func (rw *rawWS) waitClose(timeout time.Duration) (closeText string, err error) {
	deadline := time.Now().Add(timeout)
	for {
		op, p, err := rw.readMessage(time.Until(deadline))
		if err != nil {
			return closeText, err
		}
		if op == 0x8 {
			return closeText, nil
		}
		if bytes.Contains(p, []byte(`"type":7`)) {
			closeText = string(p)
		}
	}
}

// A client trickling one unfinished message is not active: it is closed at the client
// timeout. (Any byte used to reset the timeout, so such a client stayed forever.)
func TestIncompleteMessageIsNotActivity(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.ClientTimeout = 600 * time.Millisecond
		c.KeepAliveInterval = 200 * time.Millisecond
	})
	rw := ts.dialRaw("chat", "")
	rw.handshake()
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := rw.nc.Write(maskedFrame(0x1, []byte(`{"type":1,`))); err != nil {
					return
				}
			}
		}
	}()
	text, err := rw.waitClose(5 * time.Second)
	if err != nil {
		t.Fatalf("not closed: %v", err)
	}
	if !strings.Contains(text, "Server timeout elapsed") {
		t.Fatalf("close message %q", text)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("closed after %s", el)
	}
}

// Unfinished inbound messages draw on the process-wide memory budget: a connection
// that would pass it is closed with a reason, the others go on, and the budget is
// whole again once it is gone.
func TestMemoryBudgetClosesPartialMessage(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MemoryBudget = 64 << 10 })
	other := ts.dialRaw("chat", "other")
	other.handshake()
	rw := ts.dialRaw("chat", "big")
	rw.handshake()
	// 100 KiB of one JSON message without its record separator.
	part := append([]byte(`{"type":1,"target":"x","arguments":["`), bytes.Repeat([]byte("a"), 100<<10)...)
	rw.send(part)
	text, err := rw.waitClose(5 * time.Second)
	if err != nil || !strings.Contains(text, "memory budget") {
		t.Fatalf("close %q %v", text, err)
	}
	waitFor(t, 5*time.Second, "budget released", func() bool { return ts.s.budget.Used() == 0 })
	if ts.s.Stats().BudgetRefusals != 1 {
		t.Fatalf("refusals %d", ts.s.Stats().BudgetRefusals)
	}
	broadcast(ts.s, "chat", "m", "still here")
	if _, p, err := other.readMessage(5 * time.Second); err != nil || !strings.Contains(string(p), "still here") {
		t.Fatalf("other connection: %q %v", p, err)
	}
}

// rawWSDial opens a new connection (no negotiate) with a completed JSON handshake and
// returns its socket, with no read deadline.
func rawWSDial(ts *testServer, tok string) net.Conn {
	rw := ts.upgradeRaw("hub=chat&access_token=" + url.QueryEscape(tok))
	rw.handshake()
	_ = rw.nc.SetReadDeadline(time.Time{})
	return rw.nc
}

// One client stops reading during a stream of 1 KB broadcasts: it is closed within
// 10 s as a slow consumer, counted once, its memory goes back, and the other
// clients' latency stays low (issue 7, slow consumers).
func TestSlowConsumerDuringBroadcastStream(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for several seconds")
	}
	ts := startServer(t, nil) // the default queue bounds and write timeout
	const readers = 20
	stalled := ts.dialRaw("chat", "stalled")
	stalled.handshake() // and never reads again
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for i := 0; i < readers; i++ {
		rw := ts.dialRaw("chat", fmt.Sprint("reader", i))
		rw.handshake()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, p, err := rw.readMessage(15 * time.Second)
				if err != nil {
					return
				}
				now := time.Now()
				for _, rec := range bytes.Split(p, []byte{0x1e}) {
					_, rest, ok := bytes.Cut(rec, []byte(`"arguments":["`))
					if !ok {
						continue
					}
					ns, _, _ := bytes.Cut(rest, []byte("|"))
					sent, err := strconv.ParseInt(string(ns), 10, 64)
					if err != nil {
						continue
					}
					mu.Lock()
					lat = append(lat, now.Sub(time.Unix(0, sent)))
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, 5*time.Second, "registrations", func() bool { return ts.s.Registry().ConnectionCount("chat") == readers+1 })
	pad := strings.Repeat("x", 1000)
	start := time.Now()
	var peakHeap uint64
	const interval = 2500 * time.Microsecond // 400 messages/s of 1 KB
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var closedAfter time.Duration
	for time.Since(start) < 12*time.Second {
		<-tick.C
		broadcast(ts.s, "chat", "m", fmt.Sprintf("%d|%s", time.Now().UnixNano(), pad))
		if closedAfter == 0 && !ts.s.Registry().UserExists("chat", "stalled") {
			closedAfter = time.Since(start)
		}
		if closedAfter != 0 && time.Since(start) > closedAfter+2*time.Second {
			break // two more seconds of stream after the close
		}
		var ms runtime.MemStats
		if time.Since(start)%time.Second < interval {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
		}
	}
	if closedAfter == 0 || closedAfter > 10*time.Second {
		t.Fatalf("the client that stopped reading was not closed within 10 s (%s)", closedAfter)
	}
	if got := ts.s.Stats().SlowConsumers; got != 1 {
		t.Fatalf("counted %d slow consumers, want 1", got)
	}
	waitFor(t, 5*time.Second, "queued bytes released", func() bool { return ts.s.budget.Used() < 64<<10 })
	if peakHeap > 96<<20 {
		t.Fatalf("heap peaked at %d MiB", peakHeap>>20)
	}
	mu.Lock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	n := len(lat)
	var p99 time.Duration
	if n > 0 {
		p99 = lat[n*99/100]
	}
	mu.Unlock()
	t.Logf("closed after %s; others: %d deliveries, p99 %s; heap peak %d MiB", closedAfter.Round(time.Millisecond), n, p99, peakHeap>>20)
	if n < readers*int(closedAfter/interval)/4 {
		t.Fatalf("the other clients got only %d messages", n)
	}
	if p99 > time.Second {
		t.Fatalf("the other clients' p99 is %s", p99)
	}
}
