package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serverFrame is an unmasked frame as a server writes it.
func serverFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, byte(n))
	case n <= 0xffff:
		f = append(f, 126, byte(n>>8), byte(n))
	default:
		f = append(f, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	return append(f, payload...)
}

// benchRecord is a bench message as the server frames it, sent at sent.
func benchRecord(sent time.Time, seq int, payload string) string {
	return `{"type":1,"target":"bench","arguments":[` + strconv.FormatInt(sent.UnixNano(), 10) + `,` +
		strconv.Itoa(seq) + `,"` + payload + `"]}` + "\x1e"
}

// The raw client's chunked reader: frames split over reads, several records in one
// frame, a frame whose header arrived with the handshake, control frames between
// fragments, a message larger than the read buffer, a record written by another
// encoder (fields in another order), one it cannot read, one without its separator,
// and the server's close.
func TestRawReadLoop(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	c := &rawClient{nc: cli, br: bufio.NewReader(cli), user: "u0", done: make(chan struct{})}
	rv := newReceiver()
	rv.measureFrom.Store(0)
	ph := rv.cur.Load()

	sent := time.Now().Add(-50 * time.Millisecond)
	var stream []byte
	// Three records in one frame.
	stream = append(stream, serverFrame(true, opText, []byte(benchRecord(sent, 1, "a")+benchRecord(sent, 2, "b")+benchRecord(sent, 3, "c")))...)
	// A fragmented message with a ping between its fragments.
	two := benchRecord(sent, 4, "d") + benchRecord(sent, 5, "e")
	stream = append(stream, serverFrame(false, opText, []byte(two[:20]))...)
	stream = append(stream, serverFrame(true, opPing, []byte("hi"))...)
	stream = append(stream, serverFrame(true, opContinuation, []byte(two[20:]))...)
	// Larger than the read buffer (two length bytes), then other field orders.
	stream = append(stream, serverFrame(true, opText, []byte(benchRecord(sent, 6, strings.Repeat("x", 3*rawReadBuffer))))...)
	stream = append(stream, serverFrame(true, opText, []byte(`{"target":"bench","type":1,"arguments":[`+strconv.FormatInt(sent.UnixNano(), 10)+`,7,"f"]}`+"\x1e"+`{"type":6}`+"\x1e"))...)
	stream = append(stream, serverFrame(true, opText, []byte(`{"type":1,"target":"bench","arguments":["no stamp"]}`+"\x1e"))...)
	stream = append(stream, serverFrame(true, opText, []byte(`{"type":1,"target":"bench","arguments":[1,8,"unterminated"]}`))...)
	stream = append(stream, serverFrame(true, opClose, []byte{0x03, 0xe8})...)

	// What the client writes (the pong) is read meanwhile: the pipe does not buffer.
	fromClient := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(srv)
		fromClient <- b
	}()
	writes := make(chan error, 1)
	go func() {
		// The first 3 bytes come before the read loop starts (the handshake's reader
		// holds them), the rest in pieces that cut headers and records.
		for len(stream) > 0 {
			n := min(len(stream), 7+len(stream)%13)
			if _, err := srv.Write(stream[:n]); err != nil {
				writes <- err
				return
			}
			stream = stream[n:]
		}
		writes <- nil
	}()
	if _, err := c.br.Peek(3); err != nil {
		t.Fatal(err)
	}
	go c.readLoop(rv, 0)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the read loop did not end on the close frame")
	}
	if err := <-writes; err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "closed the WebSocket") {
		t.Fatalf("err = %v", err)
	}
	if got := ph.delivered.Load(); got != 7 {
		t.Fatalf("%d deliveries recorded, want 7", got)
	}
	if got := rv.bad.Load(); got != 2 {
		t.Fatalf("%d bad messages, want 2", got)
	}
	h := ph.rec.Snapshot()
	if h.Count() != 7 || h.Quantile(50) < 50*time.Millisecond {
		t.Fatalf("%d latencies, p50 %s", h.Count(), h.Quantile(50))
	}
	cli.Close()
	pong := <-fromClient
	// The pong is masked: 0x8a, 0x80|2, a 4-byte key, 2 bytes.
	if len(pong) != 8 || pong[0] != 0x80|opPong || pong[1] != 0x80|2 {
		t.Fatalf("client wrote % x", pong)
	}
	if got := []byte{pong[6] ^ pong[2], pong[7] ^ pong[3]}; !bytes.Equal(got, []byte("hi")) {
		t.Fatalf("pong payload %q", got)
	}
}

// Messages numbered below the phase's first are not measured.
func TestRecordBatchSkipsEarlierPhase(t *testing.T) {
	rv := newReceiver()
	ph := rv.begin(10)
	now := time.Now()
	sent := []int64{now.UnixNano(), now.UnixNano(), now.UnixNano()}
	rv.recordBatch(3, now, sent, []int64{8, 9, 10})
	if got := ph.delivered.Load(); got != 1 {
		t.Fatalf("%d deliveries, want 1", got)
	}
}

// memConn serves a stream of bytes rounds times over, in reads of at most chunk
// bytes (as a socket hands over what arrived), then io.EOF.
type memConn struct {
	net.Conn
	stream []byte
	off    int
	rounds int
	chunk  int
}

func (m *memConn) Read(p []byte) (int, error) {
	if m.off == len(m.stream) {
		if m.rounds == 0 {
			return 0, io.EOF
		}
		m.rounds--
		m.off = 0
	}
	n := copy(p[:min(len(p), m.chunk)], m.stream[m.off:])
	m.off += n
	return n, nil
}

func (m *memConn) Close() error { return nil }

// BenchmarkRawReadLoop is the load generator's cost per bench message received by
// a raw client, in frames of 18 records (how the server writes under overload).
func BenchmarkRawReadLoop(b *testing.B) {
	sent := time.Now()
	var stream []byte
	const frames, perFrame = 100, 18
	for f := range frames {
		var msg string
		for k := range perFrame {
			msg += benchRecord(sent, f*perFrame+k, strings.Repeat("x", 64))
		}
		stream = append(stream, serverFrame(true, opText, []byte(msg))...)
	}
	mc := &memConn{stream: stream, off: len(stream), rounds: b.N/(frames*perFrame) + 1, chunk: 2500}
	c := &rawClient{nc: mc, br: bufio.NewReader(mc), user: "u0", done: make(chan struct{})}
	rv := newReceiver()
	rv.measureFrom.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	c.readLoop(rv, 0)
	b.StopTimer()
	if got := rv.cur.Load().delivered.Load(); got < int64(b.N) {
		b.Fatalf("%d delivered of %d", got, b.N)
	}
}
