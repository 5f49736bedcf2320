package server

import (
	"bufio"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
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
