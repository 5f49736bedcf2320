package uring

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pairs returns n connected loopback TCP pairs: the server ends' descriptors (for
// the ring) and the client ends (to read from).
func pairs(t testing.TB, n int) (fds []uintptr, clients []net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		rc, err := s.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		// The net package keeps the descriptor non-blocking and open until Cleanup.
		_ = rc.Control(func(fd uintptr) { fds = append(fds, fd) })
		clients = append(clients, c)
	}
	return fds, clients
}

func newRing(t testing.TB, entries int) *Ring {
	t.Helper()
	r, err := New(entries)
	if err != nil {
		t.Fatalf("io_uring is needed by the server's fan-out on Linux: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func readFull(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSubmitSendsEveryQueuedMessage(t *testing.T) {
	r := newRing(t, 8)
	fds, clients := pairs(t, 5)
	for round := range 3 { // the ring is reused
		for i, fd := range fds {
			if !r.Queue(fd, []byte{byte('a' + i), byte('0' + round)}) {
				t.Fatal("Queue refused with room left")
			}
		}
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		for i, s := range r.Queued() {
			if s.N != 2 || s.Errno != 0 {
				t.Fatalf("round %d send %d: n=%d errno=%v", round, i, s.N, s.Errno)
			}
		}
		r.Reset()
		for i, c := range clients {
			if got, want := readFull(t, c, 2), []byte{byte('a' + i), byte('0' + round)}; !bytes.Equal(got, want) {
				t.Fatalf("round %d client %d got %q, want %q", round, i, got, want)
			}
		}
	}
}

func TestQueueRefusesBeyondCap(t *testing.T) {
	r := newRing(t, 4)
	if r.Cap() != 4 {
		t.Fatalf("Cap = %d", r.Cap())
	}
	for i := range 4 {
		if !r.Queue(uintptr(100+i), []byte("x")) {
			t.Fatalf("Queue %d refused", i)
		}
	}
	if r.Queue(200, []byte("x")) {
		t.Fatal("a fifth send was queued in a ring of 4")
	}
	r.Reset()
	if len(r.Queued()) != 0 {
		t.Fatal("Reset left sends queued")
	}
}

// A socket whose peer does not read takes what its buffers hold and then nothing:
// the send reports the bytes it took, then EAGAIN, and never waits.
func TestSubmitDoesNotWaitForAFullSocket(t *testing.T) {
	r := newRing(t, 2)
	fds, _ := pairs(t, 1)
	big := make([]byte, 1<<20)
	total, sawShort := 0, false
	deadline := time.Now().Add(10 * time.Second)
	for !sawShort {
		if time.Now().After(deadline) {
			t.Fatalf("the socket took %d bytes without a short send", total)
		}
		r.Queue(fds[0], big)
		start := time.Now()
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Submit waited %v", d)
		}
		s := r.Queued()[0]
		r.Reset()
		switch {
		case s.Errno == syscall.EAGAIN:
			sawShort = true
		case s.Errno != 0:
			t.Fatalf("send: %v", s.Errno)
		case s.N < len(big):
			total += s.N
			sawShort = true
		default:
			total += s.N
		}
	}
}

func TestSubmitReportsAFailedSend(t *testing.T) {
	r := newRing(t, 2)
	fds, clients := pairs(t, 2)
	// The first peer resets its connection (linger 0): a send to it fails.
	_ = clients[0].(*net.TCPConn).SetLinger(0)
	_ = clients[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.Queue(fds[0], []byte("to a closed peer"))
		r.Queue(fds[1], []byte("ok"))
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		bad, good := r.Queued()[0], r.Queued()[1]
		r.Reset()
		if good.N != 2 || good.Errno != 0 {
			t.Fatalf("the healthy send: n=%d errno=%v", good.N, good.Errno)
		}
		if got := readFull(t, clients[1], 2); string(got) != "ok" {
			t.Fatalf("got %q", got)
		}
		if bad.Errno != 0 {
			if bad.Errno != syscall.EPIPE && bad.Errno != syscall.ECONNRESET {
				t.Fatalf("send to a reset connection: %v", bad.Errno)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("sends to a reset connection kept succeeding")
		}
	}
}

func TestSubmitWithNothingQueued(t *testing.T) {
	r := newRing(t, 2)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
}

func TestNewRejectsBadSizes(t *testing.T) {
	for _, n := range []int{0, -1, 3, 100, 8192} {
		if r, err := New(n); err == nil {
			_ = r.Close()
			t.Errorf("New(%d) accepted", n)
		}
	}
}

// A send on a descriptor that is not a socket fails in its own entry, and the
// others of the same Submit still go.
func TestSubmitReportsABadDescriptorPerSend(t *testing.T) {
	r := newRing(t, 4)
	fds, clients := pairs(t, 1)
	f, w, err := pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(f)
	defer syscall.Close(w)
	r.Queue(uintptr(f), []byte("not a socket"))
	r.Queue(fds[0], []byte("ok"))
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if s := r.Queued()[0]; s.Errno == 0 {
		t.Fatal("a send on a pipe's read end succeeded")
	}
	if s := r.Queued()[1]; s.N != 2 || s.Errno != 0 {
		t.Fatalf("the socket's send: n=%d errno=%v", s.N, s.Errno)
	}
	if got := readFull(t, clients[0], 2); string(got) != "ok" {
		t.Fatalf("got %q", got)
	}
}

func pipe() (int, int, error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return 0, 0, errors.Join(errors.New("pipe"), err)
	}
	return p[0], p[1], nil
}

// A ring whose io_uring_enter fails (here: a descriptor that is not the ring's)
// sends nothing and says so: EAGAIN on every Send it did not hand to the kernel, so
// that the caller can send them another way, and the ring stays failed.
func TestAFailedRingSendsNothingAndSaysSo(t *testing.T) {
	r := newRing(t, 4)
	fds, clients := pairs(t, 2)
	ringFD := r.fd
	r.fd = int(fds[0]) // not an io_uring: io_uring_enter fails with EOPNOTSUPP
	defer func() { r.fd = ringFD }()
	r.Queue(fds[0], []byte("a"))
	r.Queue(fds[1], []byte("b"))
	if err := r.Submit(); err == nil {
		t.Fatal("Submit on a broken ring succeeded")
	}
	for i, s := range r.Queued() {
		if s.N != 0 || s.Errno != syscall.EAGAIN {
			t.Fatalf("send %d: n=%d errno=%v, want nothing sent (EAGAIN)", i, s.N, s.Errno)
		}
	}
	if r.Err() == nil {
		t.Fatal("the ring does not say it failed")
	}
	r.Reset()
	r.fd = ringFD
	r.Queue(fds[1], []byte("c"))
	if err := r.Submit(); err == nil || r.Queued()[0].Errno != syscall.EAGAIN {
		t.Fatalf("a failed ring was used again: %v, %v", err, r.Queued()[0].Errno)
	}
	// Nothing reached either peer: the first byte each reads is written now.
	for i, fd := range fds {
		if n, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&[]byte("z")[0])), 1, syscall.MSG_DONTWAIT, 0, 0); e != 0 || n != 1 {
			t.Fatal(e)
		}
		if got := readFull(t, clients[i], 1); string(got) != "z" {
			t.Fatalf("peer %d read %q first", i, got)
		}
	}
}
