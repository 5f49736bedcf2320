//go:build linux

package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/signalbox-io/signalbox/internal/rawtcp"
)

// EventLoop watches the sockets of WebSocket connections with one epoll instance and
// one goroutine, so that an idle connection needs no goroutine parked in Read. It
// holds its epoll descriptor and goroutine only while it watches something: both go
// away with the last connection and come back with the next. The zero value is
// ready to use.
type EventLoop struct {
	mu      sync.Mutex
	epfd    int // -1 or 0 when not running (see running)
	wakeR   int // read end of the pipe that wakes the loop
	wakeW   int
	running bool
	seq     uint32
	// conns is indexed by fd (descriptors are small, dense numbers): 8 bytes per
	// descriptor instead of a map entry per connection.
	conns   []*WebSocket
	watched int // the non-nil entries of conns
	// work hands a readable connection to a parked reader goroutine; the loop
	// goroutine is its only sender and closes it when it ends.
	work chan *WebSocket
	// done is closed when the loop goroutine started last has ended (see Wait).
	done   chan struct{}
	parked atomic.Int32 // reader goroutines waiting on work
}

// maxParkedReaders bounds the reader goroutines kept parked between bursts. Reusing
// them keeps their stacks, which have grown to fit the hub's inbound path: a fresh
// goroutine per read spent about a tenth of the CPU of an invocation-heavy load in
// growing and copying its stack. 1,024 covers the connections readable at once under
// S2's overload (a cap of 256 still started 1,600–2,900 goroutines a second); the price
// is memory, since parked readers keep their grown stacks: RSS +7–20 MiB at 22,000
// invocations/s (docs/performance.md, S2, "Server refusal path").
const maxParkedReaders = 1024

// dispatch runs ws's reader on a parked goroutine, or on a new one (which parks
// afterwards) when none is free: a reader blocked in a handler never delays another
// connection. Only the loop goroutine calls it.
func (p *EventLoop) dispatch(ws *WebSocket) {
	select {
	case p.work <- ws:
		// Counted off here, not by the reader once it runs: a reader handed work
		// but not yet scheduled (the usual case on a busy server) counted as parked,
		// so the readers finishing meanwhile found the count full and ended, and the
		// next dispatches started fresh goroutines again (thousands a second under
		// the S2 overload load, each growing its stack).
		p.parked.Add(-1)
	default:
		go p.reader(ws, p.work)
	}
}

func (p *EventLoop) reader(ws *WebSocket, work chan *WebSocket) {
	for {
		ws.run()
		if p.parked.Add(1) > maxParkedReaders {
			p.parked.Add(-1)
			return
		}
		var ok bool
		if ws, ok = <-work; !ok {
			p.parked.Add(-1)
			return
		}
	}
}

// pollEvents asks for edge-triggered readability, which includes the peer's
// half-close and errors. (syscall declares EPOLLET as a negative int.)
const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff

// register starts watching ws's socket.
func (p *EventLoop) register(ws *WebSocket) error {
	var fd int
	if err := ws.rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return fmt.Errorf("websocket: poller: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ws.closed.Load() {
		// closeSocket ran (or runs) already: its unregister took p.mu before this
		// registration, which would then never be undone.
		return errors.New("websocket: poller: the socket is closed")
	}
	if !p.running {
		if err := p.start(); err != nil {
			return err
		}
	}
	p.seq++
	ws.fd, ws.seq = int32(fd), p.seq
	ev := syscall.EpollEvent{Events: uint32(pollEvents), Fd: int32(fd), Pad: int32(ws.seq)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		ws.fd = -1
		p.stopIfIdle()
		return fmt.Errorf("websocket: poller: epoll_ctl add: %w", err)
	}
	if fd >= len(p.conns) {
		p.conns = append(p.conns, make([]*WebSocket, fd+1-len(p.conns))...)
	}
	p.conns[fd] = ws
	p.watched++
	return nil
}

// unregister stops watching ws if it is watched; the caller closes the socket
// afterwards, so the fd number is not reused while it is still registered. ws.fd is
// read under p.mu only: register writes it under p.mu, maybe while ws is closed.
func (p *EventLoop) unregister(ws *WebSocket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fd := int(ws.fd)
	if fd < 0 || fd >= len(p.conns) || p.conns[fd] != ws {
		return
	}
	p.conns[fd] = nil
	p.watched--
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	p.stopIfIdle()
}

// start creates the epoll instance and its goroutine; p.mu is held.
func (p *EventLoop) start() error {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("websocket: poller: epoll_create: %w", err)
	}
	// The runtime's poller watches the epoll descriptor itself (it is readable while
	// events are ready), so that the loop waits as a parked goroutine, not in a
	// blocking epoll_wait that holds a P.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return fmt.Errorf("websocket: poller: %w", err)
	}
	epf := os.NewFile(uintptr(epfd), "epoll") // owns epfd from here on
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = epf.Close()
		return fmt.Errorf("websocket: poller: pipe: %w", err)
	}
	fail := func(err error) error {
		_ = epf.Close()
		_ = syscall.Close(pipe[0])
		_ = syscall.Close(pipe[1])
		return fmt.Errorf("websocket: poller: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(pipe[0]), Pad: 0}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		return fail(fmt.Errorf("epoll_ctl add: %w", err))
	}
	rc, err := epf.SyscallConn()
	if err != nil {
		return fail(err)
	}
	p.epfd, p.wakeR, p.wakeW, p.running = epfd, pipe[0], pipe[1], true
	p.work = make(chan *WebSocket)
	p.done = make(chan struct{})
	go p.loop(epf, rc, epfd, pipe[0], p.work, p.done)
	return nil
}

// Wait returns once no loop goroutine runs, or with ctx's error. The loop ends by
// itself after the last watched socket is closed, but asynchronously: its owner
// waits for it when it shuts down, so that nothing it started outlives it.
func (p *EventLoop) Wait(ctx context.Context) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	for done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("websocket: event loop still watching sockets: %w", ctx.Err())
		}
		// A socket registered meanwhile started another loop.
		p.mu.Lock()
		next := p.done
		p.mu.Unlock()
		if next == done {
			return nil
		}
		done = next
	}
	return nil
}

// stopIfIdle wakes the loop when nothing is watched any more, so that it ends and
// releases its descriptors; p.mu is held.
func (p *EventLoop) stopIfIdle() {
	if p.watched == 0 && p.running {
		_, _ = syscall.Write(p.wakeW, []byte{1})
	}
}

// loop waits for events as a goroutine parked in the runtime's poller (epf is
// registered there), then takes them with a raw epoll_wait that does not wait. It used
// to block in epoll_wait: a goroutine in a blocking system call keeps its P in the
// system-call state until sysmon retakes it, and sysmon, retaking something every few
// rounds, kept polling every 20 µs. At 12,000 invocations/s on a quiet machine
// (docs/performance.md, S2, "The event loop in the runtime's poller"): server CPU
// 62 → 55 µs per call, p99 16 → 10 ms, and at twice that rate 14,500 → 19,700
// calls/s answered.
func (p *EventLoop) loop(epf *os.File, rc syscall.RawConn, epfd, wakeR int, work chan *WebSocket, done chan struct{}) {
	events := make([]syscall.EpollEvent, 128)
	var n int
	ready := func(uintptr) bool {
		var err error
		n, err = epollNow(epfd, events)
		return err == nil && n > 0 // otherwise wait until the poller says readable
	}
	for {
		if err := rc.Read(ready); err != nil {
			// Not expected (epf is closed only below, and an epoll descriptor is
			// pollable): wait in epoll_wait itself rather than spin on the error.
			var werr error
			if n, werr = syscall.EpollWait(epfd, events, -1); werr != nil {
				continue // EINTR
			}
		}
		woken := false
		p.mu.Lock()
		for i := range n {
			ev := &events[i]
			fd := int(ev.Fd)
			if fd == wakeR {
				woken = true
				continue
			}
			if fd >= len(p.conns) {
				continue
			}
			if ws := p.conns[fd]; ws != nil && ws.seq == uint32(ev.Pad) {
				ws.readable(ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0)
			}
		}
		if woken {
			var b [64]byte
			for {
				if n, _ := syscall.Read(wakeR, b[:]); n <= 0 {
					break
				}
			}
			if p.watched == 0 {
				p.conns = nil // its length is that of the busiest moment
				p.running = false
				_ = syscall.Close(p.wakeW)
				_ = syscall.Close(wakeR)
				_ = epf.Close()
				p.epfd, p.wakeR, p.wakeW = -1, -1, -1
				close(work) // parked readers end
				p.mu.Unlock()
				close(done)
				return
			}
		}
		p.mu.Unlock()
	}
}

// tcpNotSentLowat is TCP_NOTSENT_LOWAT (linux/tcp.h), missing from syscall.
const tcpNotSentLowat = 25

// notSentLowat bounds the bytes a socket accepts beyond what the peer's window takes.
// A client that stops reading then blocks its writer after its receive window plus
// this much, instead of after the send buffer has grown to tcp_wmem's maximum
// (4 MiB here): the outbound queue and the write timeout see it early, and the
// kernel does not hold megabytes for it.
const notSentLowat = 64 << 10

// tuneSocket applies notSentLowat to a WebSocket's socket.
func tuneSocket(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, notSentLowat)
	})
}

// epollNow returns the events ready on epfd without waiting, as a raw system call
// (epoll_pwait with no signal mask: arm64 and riscv64 have no epoll_wait).
func epollNow(epfd int, events []syscall.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// haveEventLoop: Linux reads WebSocket connections from the epoll loop, through
// their raw sockets.
const haveEventLoop = true

// readNow reads what the non-blocking socket fd holds now, as a raw system call: one
// through package syscall would wake the runtime's sysmon from its deep sleep at every
// burst (see package rawtcp).
func readNow(fd uintptr, b []byte) (int, error) {
	n, e := rawtcp.ReadNow(fd, b)
	if e != 0 {
		return 0, e
	}
	return n, nil
}

// sendNow writes what the non-blocking socket fd takes now, with send(2) as a raw
// system call. At 2,000 clients × 25 broadcasts/s nearly all of the server's CPU is
// one such send per delivery, so its overhead counts (perf, cpu-clock, share of the
// server's CPU): send skips write(2)'s file layer (vfs_write, the file position lock
// and sock_write_iter: 12.4 % → 8.2 % outside tcp_sendmsg), and a raw call skips
// the scheduler's system-call bookkeeping, which a non-blocking send does not need
// (it never waits for the peer, so there is no P to hand over meanwhile): the Go
// side of a delivery's write went from 5.9 % to 2.2 %.
func sendNow(fd uintptr, b []byte) (int, error) {
	n, e := rawtcp.SendNow(fd, b)
	if e != 0 {
		return 0, e
	}
	return n, nil
}
