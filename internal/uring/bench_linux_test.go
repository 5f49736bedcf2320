package uring

import (
	"io"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The cost per small send to 256 loopback sockets, one send(2) each against one
// Submit for all (readers drain the peers meanwhile). On this project's 2-core test
// machine the per-call boundary is the difference (docs/performance.md, S1).
const benchSockets = 256

func drained(b *testing.B) []uintptr {
	fds, clients := pairs(b, benchSockets)
	for _, c := range clients {
		go func() { _, _ = io.Copy(io.Discard, c) }()
	}
	return fds
}

func BenchmarkSendOneByOne(b *testing.B) {
	fds := drained(b)
	msg := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fd := fds[i%benchSockets]
		_, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)),
			syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
		if e != 0 && e != syscall.EAGAIN {
			b.Fatal(e)
		}
	}
}

func BenchmarkSendGathered(b *testing.B) {
	fds := drained(b)
	r := newRing(b, benchSockets)
	msg := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Queue(fds[i%benchSockets], msg)
		if len(r.Queued()) == benchSockets || i == b.N-1 {
			if err := r.Submit(); err != nil {
				b.Fatal(err)
			}
			r.Reset()
		}
	}
}
