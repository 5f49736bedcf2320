package server

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/protocol"
)

func TestUpstreamQueryDropsSecrets(t *testing.T) {
	cases := map[string]string{
		"hub=chat&id=SECRET&access_token=TOKEN&room=blue": "?hub=chat&room=blue",
		"Access_Token=x&ID=y":                             "",
		"hub=chat&access%5Ftoken=x&a=1&&b":                "?hub=chat&a=1&b",
		"":                                                "",
	}
	for in, want := range cases {
		if got := upstreamQuery(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// handshakenWebSocketConn is a JSON WebSocket connection of s past its handshake,
// with no socket yet: the test sets c.ws.
func handshakenWebSocketConn(t *testing.T, s *Server) *conn {
	t.Helper()
	c, _, _ := s.newConn("chat", &auth.Principal{}, "", "127.0.0.1", 1)
	if first, _, msg := s.attach(c, transport.WebSockets, ""); !first {
		t.Fatal(msg)
	}
	c.proto = protocol.JSON()
	c.handshaken.Store(true)
	return c
}

// TestWriterCoalesces checks that frames queued while the writer was busy leave in
// one write.
func TestWriterCoalesces(t *testing.T) {
	s, err := New(fastConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := handshakenWebSocketConn(t, s)
	fw := &fakeWS{}
	c.ws = fw
	c.writerOn.Store(true) // as if a writer were busy with an earlier write
	for i := 0; i < 5; i++ {
		c.Send([]byte("frame\x1e"))
	}
	c.writerOn.Store(false)
	c.kick()
	c.Close("bye", false)
	select {
	case <-c.stopChan():
	case <-time.After(5 * time.Second):
		t.Fatal("writer did not end the connection")
	}
	s.wg.Wait() // the cleanup released attach's count
	fw.mu.Lock()
	defer fw.mu.Unlock()
	writes := fw.writes
	if len(writes) == 0 || !strings.HasPrefix(writes[0], strings.Repeat("frame\x1e", 5)) {
		t.Fatalf("writes %q", writes)
	}
	if last := writes[len(writes)-1]; !strings.Contains(last, `"type":7`) || !strings.Contains(last, "bye") {
		t.Fatalf("last write %q is not the Close message", last)
	}
	if s.Stats().Connections != 0 {
		t.Fatal("connection not removed")
	}
}

// fakeWS records the batches a connection's writer sends.
type fakeWS struct {
	mu     sync.Mutex
	writes []string
}

func (f *fakeWS) WriteFramed(b []byte, _ bool) error {
	f.mu.Lock()
	f.writes = append(f.writes, string(b[transport.Headroom:]))
	f.mu.Unlock()
	return nil
}
func (f *fakeWS) TryWriteFramed(b []byte, binary bool) ([]byte, error) {
	return nil, f.WriteFramed(b, binary)
}
func (f *fakeWS) QueueWriteFramed(_ *transport.SendBatch, b []byte, binary bool, _ transport.WriteDoner) (bool, []byte, error) {
	rest, err := f.TryWriteFramed(b, binary)
	return false, rest, err
}
func (f *fakeWS) FinishWrite([]byte) error { return nil }
func (f *fakeWS) Close() error             { return nil }
func (f *fakeWS) CloseNow() error          { return nil }

func TestCloseFromRegistry(t *testing.T) {
	rec, upURL := newUpstream(t)
	ts := startServer(t, func(c *Config) { c.Upstream = StringList{upURL} })
	wc, n := ts.connectWS("chat", "", protocol.MessagePack())
	waitFor(t, 2*time.Second, "registration", func() bool { _, ok := ts.s.Registry().Connection("chat", n.ConnectionID); return ok })
	if !ts.s.Registry().CloseConnection("chat", n.ConnectionID, "kicked") {
		t.Fatal("CloseConnection")
	}
	cm, err := wc.waitClosed(2 * time.Second)
	if err != nil || cm == nil || cm.Error != "kicked" {
		t.Fatalf("%+v %v", cm, err)
	}
	rec.wait(t, 2*time.Second, func(e upstreamEvent) bool { return e.Event == "disconnected" && e.ConnectionID == n.ConnectionID })
}

func TestMaxConnections(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxConnections = 1 })
	ts.negotiate("chat", "")
	resp := ts.do("POST", "/client/negotiate?hub=chat", ts.token("chat", ""), nil, nil)
	if resp.StatusCode != 429 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// A close that arrives while the handshake is completing (the connection is already
// registered, its handshake response not queued yet) must still send the Close
// message with its reason; it used to close the socket bare about once in twenty.
func TestCloseRightAfterRegistrationSendsReason(t *testing.T) {
	ts := startServer(t, nil)
	for i := range 50 {
		wc, n := ts.connectWS("chat", "", protocol.JSON())
		if !ts.s.Registry().CloseConnection("chat", n.ConnectionID, "kicked") {
			t.Fatalf("round %d: CloseConnection found no connection", i)
		}
		cm, err := wc.waitClosed(2 * time.Second)
		if err != nil || cm == nil || cm.Error != "kicked" {
			t.Fatalf("round %d: close message %+v, error %v", i, cm, err)
		}
	}
}
