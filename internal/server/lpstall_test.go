package server

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// A long-polling client that sends a poll and never reads its response is a client
// that does not read: the write timeout must end the poll and the connection, or the
// connection (and every byte queued for it) lives forever.
func TestLongPollingStalledReaderIsClosed(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.WriteTimeout = 200 * time.Millisecond
		c.ClientTimeout = 500 * time.Millisecond
		c.KeepAliveInterval = 200 * time.Millisecond
		c.SendQueueBytes = 64 << 20
		c.SendQueueFrames = 1 << 20
	})
	n, _ := ts.startLongPolling("chat", "stall", protocol.JSON())
	big := strings.Repeat("x", 1<<20)
	for i := 0; i < 32; i++ { // more than loopback socket buffers hold
		broadcast(ts.s, "chat", "big", big)
	}
	addr := strings.TrimPrefix(ts.url, "http://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	fmt.Fprintf(nc, "GET /client/?hub=chat&id=%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
		url.QueryEscape(n.ConnectionToken), addr, ts.token("chat", "stall"))
	// Never read.
	waitFor(t, 10*time.Second, "the stalled long-polling connection to end", func() bool {
		return !ts.s.Registry().UserExists("chat", "stall") && ts.s.Stats().Connections == 0
	})
}
