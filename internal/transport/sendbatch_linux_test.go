package transport

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func newSendBatch(t *testing.T) *SendBatch {
	t.Helper()
	sb, err := NewSendBatch()
	if err != nil {
		t.Fatalf("the fan-out's gathered sends need io_uring on Linux: %v", err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	return sb
}

// doneLog records the WriteDone calls of a batch in order.
type doneLog struct {
	calls []doneCall
}

type doneCall struct {
	ws          *WebSocket
	batch, rest []byte
	err         error
}

func (d *doneLog) WriteDone(ws *WebSocket, batch, rest []byte, err error) {
	d.calls = append(d.calls, doneCall{ws, batch, rest, err})
}

func framed(s string) []byte {
	b := make([]byte, Headroom, Headroom+len(s))
	return append(b, s...)
}

// More writes than a batch holds: they go out in order, each connection gets its
// frame whole, and every WriteDone comes with its own batch, no rest, no error.
func TestSendBatchWritesEveryConnection(t *testing.T) {
	n := SendBatchSize + 3 // one intermediate Submit from QueueWriteFramed
	wss, ncs := acceptedPairs(t, n)
	sb := newSendBatch(t)
	var log doneLog
	batches := make([][]byte, n)
	for i, ws := range wss {
		batches[i] = framed(fmt.Sprintf("message %d", i))
		queued, rest, err := ws.QueueWriteFramed(sb, batches[i], false, &log)
		if !queued || rest != nil || err != nil {
			t.Fatalf("connection %d: queued=%v rest=%d err=%v", i, queued, len(rest), err)
		}
	}
	if len(log.calls) != SendBatchSize {
		t.Fatalf("%d writes done before Submit, want the first %d", len(log.calls), SendBatchSize)
	}
	sb.Submit()
	if len(log.calls) != n {
		t.Fatalf("%d writes done, want %d", len(log.calls), n)
	}
	for i, c := range log.calls {
		if c.ws != wss[i] || &c.batch[0] != &batches[i][0] || len(c.rest) != 0 || c.err != nil {
			t.Fatalf("WriteDone %d: ws %v batch %v rest %d err %v", i, c.ws == wss[i], &c.batch[0] == &batches[i][0], len(c.rest), c.err)
		}
	}
	for i, nc := range ncs {
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, want := readFrame(t, bufio.NewReader(nc)), fmt.Sprintf("message %d", i); got != want {
			t.Fatalf("connection %d got %q, want %q", i, got, want)
		}
	}
	// The write locks were released: a plain write goes through.
	if err := wss[0].WriteMessage([]byte("after"), false); err != nil {
		t.Fatal(err)
	}
}

// A full socket (a client that does not read) takes part of the frame: WriteDone gets
// the rest with the write lock still held, and FinishWrite completes the message.
func TestSendBatchLeavesTheRestOfAFullSocket(t *testing.T) {
	wss, ncs := acceptedPairs(t, 1)
	ws, nc := wss[0], ncs[0]
	big := strings.Repeat("x", 32<<10)
	sent := 0
	var rest []byte
	for ; sent < 1000 && len(rest) == 0; sent++ {
		sb := newSendBatch(t)
		var log doneLog
		if queued, _, err := ws.QueueWriteFramed(sb, framed(big), false, &log); !queued || err != nil {
			t.Fatalf("message %d: queued=%v err=%v", sent, queued, err)
		}
		sb.Submit()
		if len(log.calls) != 1 || log.calls[0].err != nil {
			t.Fatalf("message %d: %+v", sent, log.calls)
		}
		rest = log.calls[0].rest
	}
	if len(rest) == 0 {
		t.Fatal("1,000 messages of 32 KiB never filled the socket")
	}
	if ws.wmu.TryLock() {
		t.Fatal("the write lock was released with a rest to write")
	}
	finished := make(chan error, 1)
	go func() { finished <- ws.FinishWrite(rest) }()
	br := bufio.NewReader(nc)
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range sent {
		if got := readFrame(t, br); got != big {
			t.Fatalf("message %d of %d: %d bytes", i, sent, len(got))
		}
	}
	writeDone(t, finished)
}

// A write in progress on one connection (its lock held) is not waited for: that
// connection is not queued and says ErrWriteBusy; the others are.
func TestSendBatchSkipsABusyConnection(t *testing.T) {
	wss, ncs := acceptedPairs(t, 2)
	sb := newSendBatch(t)
	wss[0].wmu.Lock()
	var log doneLog
	queued, _, err := wss[0].QueueWriteFramed(sb, framed("busy"), false, &log)
	wss[0].wmu.Unlock()
	if queued || !errors.Is(err, ErrWriteBusy) {
		t.Fatalf("queued=%v err=%v, want ErrWriteBusy", queued, err)
	}
	if queued, _, err := wss[1].QueueWriteFramed(sb, framed("free"), false, &log); !queued || err != nil {
		t.Fatalf("queued=%v err=%v", queued, err)
	}
	sb.Submit()
	if len(log.calls) != 1 || log.calls[0].ws != wss[1] || log.calls[0].err != nil {
		t.Fatalf("%+v", log.calls)
	}
	_ = ncs[1].SetReadDeadline(time.Now().Add(5 * time.Second))
	if got := readFrame(t, bufio.NewReader(ncs[1])); got != "free" {
		t.Fatalf("got %q", got)
	}
}

// A connection closed between QueueWriteFramed and Submit fails its write, and its
// descriptor number, reused by a new socket meanwhile, receives nothing: Submit
// holds every descriptor it sends to, and a closed one cannot be held.
func TestSendBatchNeverWritesToAReusedDescriptor(t *testing.T) {
	wss, _ := acceptedPairs(t, 1)
	ws := wss[0]
	var oldFD uintptr
	_ = ws.rc.Control(func(fd uintptr) { oldFD = fd })
	sb := newSendBatch(t)
	var log doneLog
	if queued, _, err := ws.QueueWriteFramed(sb, framed("for the closed connection"), false, &log); !queued || err != nil {
		t.Fatalf("queued=%v err=%v", queued, err)
	}
	// A new connection, accepted once the old socket is closed: its end takes the
	// lowest free descriptor number, the one just freed.
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
	// CloseNow closes the socket, then waits for the write lock the queued write holds.
	closed := make(chan struct{})
	go func() { ws.CloseNow(); close(closed) }()
	deadline := time.Now().Add(5 * time.Second)
	for ws.rc.Control(func(uintptr) {}) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the socket was not closed")
		}
		time.Sleep(time.Millisecond)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	rc, _ := server.(*net.TCPConn).SyscallConn()
	var newFD uintptr
	_ = rc.Control(func(fd uintptr) { newFD = fd })
	if newFD != oldFD {
		t.Fatalf("the new socket took descriptor %d, not the freed %d: the test proves nothing", newFD, oldFD)
	}

	sb.Submit()
	if len(log.calls) != 1 || log.calls[0].err == nil {
		t.Fatalf("the write to a closed connection did not fail: %+v", log.calls)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("CloseNow still waits for the write lock")
	}
	// The new socket's first bytes are its own.
	if _, err := server.Write([]byte("mine")); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4)
	if _, err := client.Read(got); err != nil || string(got) != "mine" {
		t.Fatalf("the new socket read %q (%v) first", got, err)
	}
}

// A WebSocket written after its closing handshake began is refused at once.
func TestSendBatchRefusesAWriteAfterClose(t *testing.T) {
	wss, _ := acceptedPairs(t, 1)
	if err := wss[0].Close(); err != nil {
		t.Fatal(err)
	}
	sb := newSendBatch(t)
	var log doneLog
	queued, _, err := wss[0].QueueWriteFramed(sb, framed("late"), false, &log)
	if queued || err == nil {
		t.Fatalf("queued=%v err=%v", queued, err)
	}
	sb.Submit()
	if len(log.calls) != 0 {
		t.Fatalf("%+v", log.calls)
	}
}
