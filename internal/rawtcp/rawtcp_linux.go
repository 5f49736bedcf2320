package rawtcp

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a *net.TCPConn whose Read and Write are raw system calls. Everything else
// (deadlines, Close, CloseWrite, SyscallConn, ReadFrom) is the TCPConn's own.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	// Read's and Write's state, shared with their callbacks (bound once: a closure
	// per call would be an allocation per call). rmu and wmu keep concurrent Reads
	// (Writes) from sharing it; RawConn serialises only the callbacks.
	rmu    sync.Mutex
	rb     []byte
	rn     int
	rerr   syscall.Errno
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wb      []byte
	wn      int
	werr    syscall.Errno
	writeFn func(uintptr) bool
}

// Wrap returns c with raw reads and writes if it is a *net.TCPConn, else c itself.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	rt := &Conn{TCPConn: tc, rc: rc}
	rt.readFn = rt.readStep
	rt.writeFn = rt.writeStep
	return rt
}

// TCP returns the connection without the raw path. For a holder that does its own raw
// I/O on a connection it keeps long (a WebSocket read by the event loop): the wrapper's
// state would otherwise stay with every idle connection.
func (c *Conn) TCP() *net.TCPConn { return c.TCPConn }

// Read reads what the socket holds, waiting through the poller when it holds nothing.
// Its errors are those of net.TCPConn.Read: a failed system call as a *net.OpError
// with its *os.SyscallError, io.EOF at the peer's FIN; a deadline or a closed
// connection is left to TCPConn.Read itself, which reports it as it always does.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return c.TCPConn.Read(b)
	}
	c.rmu.Lock()
	c.rb, c.rn, c.rerr = b, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rb = nil
	c.rmu.Unlock()
	switch {
	case err != nil:
		return c.TCPConn.Read(b)
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) readStep(fd uintptr) bool {
	for {
		n, e := ReadNow(fd, c.rb)
		switch e {
		case 0:
			c.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for readability
		}
		c.rerr = e
		return true
	}
}

// Write writes all of b, waiting through the poller while the socket's buffer is full.
func (c *Conn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return c.TCPConn.Write(b)
	}
	c.wmu.Lock()
	c.wb, c.wn, c.werr = b, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werr
	c.wb = nil
	c.wmu.Unlock()
	switch {
	case err != nil:
		// A deadline or a close: the rest through TCPConn.Write, for its error.
		m, err := c.TCPConn.Write(b[n:])
		return n + m, err
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

func (c *Conn) writeStep(fd uintptr) bool {
	for c.wn < len(c.wb) {
		n, e := SendNow(fd, c.wb[c.wn:])
		switch e {
		case 0:
			c.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for writability
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// ReadNow reads what the non-blocking socket fd holds now, as a raw read(2): EAGAIN
// when it holds nothing, 0 bytes and no error at the peer's FIN.
func ReadNow(fd uintptr, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// SendNow writes what the non-blocking socket fd takes now, as a raw send(2):
// EAGAIN when it takes nothing. send skips write(2)'s file layer; MSG_NOSIGNAL makes
// a peer that went away an EPIPE error, not a signal.
func SendNow(fd uintptr, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// opError wraps errno as net wraps a failed read or write.
func (c *Conn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
