package transport

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// tcpPair is a connected loopback TCP pair, closed when the test ends.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func send(t *testing.T, c *net.TCPConn, b []byte) (n int, err error) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if cerr := rc.Control(func(fd uintptr) { n, err = sendNow(fd, b) }); cerr != nil {
		t.Fatal(cerr)
	}
	return n, err
}

// sendNow writes what the socket takes, says EAGAIN (and 0 bytes) when it takes
// nothing, and reports a reset peer as an error instead of a signal or a success.
func TestSendNow(t *testing.T) {
	s, c := tcpPair(t)
	if n, err := send(t, s, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("idle socket: %d bytes, %v", n, err)
	}
	buf := make([]byte, 5)
	if _, err := c.Read(buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}

	big := make([]byte, 1<<20)
	var err error
	for i := 0; i < 1000; i++ {
		var n int
		if n, err = send(t, s, big); err != nil {
			if n != 0 {
				t.Fatalf("a failed send reported %d bytes", n)
			}
			break
		}
	}
	if !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("a full socket: %v, want EAGAIN", err)
	}

	_ = c.SetLinger(0)
	_ = c.Close() // a reset
	for i := 0; i < 1000 && (err == nil || errors.Is(err, syscall.EAGAIN)); i++ {
		_, err = send(t, s, []byte("x"))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("a reset peer: %v, want ECONNRESET or EPIPE", err)
	}
}
