package rawtcp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair is a loopback TCP pair: the accepted side through Listener, the dialed side
// plain. Both are closed when the test ends.
func pair(t *testing.T) (server net.Conn, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := Listener(ln)
	defer wl.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := wl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return s, c.(*net.TCPConn)
}

func TestWrapOnlyTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a pipe was wrapped")
	}
	s, _ := pair(t)
	if _, ok := s.(syscall.Conn); !ok {
		t.Fatal("the wrapped connection lost SyscallConn (the WebSocket event loop needs it)")
	}
}

// Read returns what arrived, waits when nothing has, and says io.EOF at the FIN, as
// TCPConn.Read does.
func TestReadWaitsAndEnds(t *testing.T) {
	s, c := pair(t)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 64)
		n, err := s.Read(b) // nothing there yet: waits through the poller
		if err != nil {
			t.Errorf("read: %v", err)
		}
		got <- b[:n]
	}()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if string(b) != "hello" {
			t.Fatalf("read %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after data arrived")
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("at the FIN: %d, %v; want 0, io.EOF", n, err)
	}
}

// A deadline ends a waiting Read with the timeout error net gives.
func TestReadDeadline(t *testing.T) {
	s, _ := pair(t)
	if err := s.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v; want a timeout", err)
	}
}

// Write writes all of a buffer larger than the socket takes at once (it waits for
// the reader), and the reader gets every byte in order.
func TestWriteLargeWaitsForTheReader(t *testing.T) {
	s, c := pair(t)
	want := make([]byte, 16<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	var got bytes.Buffer
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.CopyN(&got, c, int64(len(want)))
	})
	if err := s.SetWriteDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := s.Write(want)
	if n != len(want) || err != nil {
		t.Fatalf("wrote %d of %d: %v", n, len(want), err)
	}
	wg.Wait()
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("the reader got %d bytes, not the %d written", got.Len(), len(want))
	}
}

// A peer that reset the connection fails the write with net's error (an *OpError
// around the system call's), not a signal or a short success.
func TestWriteToResetPeer(t *testing.T) {
	s, c := pair(t)
	if err := c.SetLinger(0); err != nil { // close sends a RST
		t.Fatal(err)
	}
	_ = c.Close()
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = s.Write([]byte("x"))
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("write to a reset peer: %v; want a write *net.OpError with ECONNRESET or EPIPE", err)
	}
}

// A write deadline that passes while the socket is full ends Write with the timeout
// error and the count written so far.
func TestWriteDeadline(t *testing.T) {
	s, _ := pair(t)
	if err := s.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<20) // more than the peer's window and the send buffer
	n, err := s.Write(big)
	if n >= len(big) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("wrote %d of %d, %v; want a short count and a timeout", n, len(big), err)
	}
}

// Reads and writes on a closed connection fail as TCPConn's do.
func TestClosed(t *testing.T) {
	s, _ := pair(t)
	_ = s.Close()
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// Reads and writes from several goroutines at once keep every byte (run with -race).
func TestConcurrentUse(t *testing.T) {
	s, c := pair(t)
	const writers, each = 4, 1000
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.Write([]byte("0123456789")); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	var total int
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		for total < writers*each*10 {
			n, err := c.Read(b)
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			total += n
		}
	}()
	wg.Wait()
	<-done
	if total != writers*each*10 {
		t.Fatalf("read %d bytes of %d", total, writers*each*10)
	}
}

// Two goroutines reading the wrapped side at once share what arrives, byte for byte.
func TestConcurrentReads(t *testing.T) {
	s, c := pair(t)
	const total = 1 << 20
	var mu sync.Mutex
	var got int
	var wg sync.WaitGroup
	if err := s.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		wg.Go(func() {
			b := make([]byte, 1000)
			for {
				n, err := s.Read(b)
				mu.Lock()
				got += n
				mu.Unlock()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
			}
		})
	}
	if _, err := c.Write(make([]byte, total)); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	wg.Wait()
	if got != total {
		t.Fatalf("the readers got %d bytes of %d", got, total)
	}
}

// TCP gives back the connection Wrap was given.
func TestTCPUnwraps(t *testing.T) {
	s, _ := pair(t)
	u, ok := s.(interface{ TCP() *net.TCPConn })
	if !ok {
		t.Skip("no raw path on this system: nothing wrapped")
	}
	if u.TCP() == nil || net.Conn(u.TCP()) == s {
		t.Fatalf("TCP() = %v", u.TCP())
	}
}
