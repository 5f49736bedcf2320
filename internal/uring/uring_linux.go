package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's ABI (include/uapi/linux/io_uring.h); the same on every architecture.
const (
	opSend = 26 // IORING_OP_SEND

	setupCoopTaskrun = 1 << 8 // IORING_SETUP_COOP_TASKRUN: no interrupt to run completions
	setupSubmitAll   = 1 << 7 // IORING_SETUP_SUBMIT_ALL: one bad entry does not stop the rest

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS

	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	msgFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFDIn  int32
	addr3       uint64
	pad2        uint64
}

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// Compile-time checks of the ABI's sizes.
var (
	_ [120 - unsafe.Sizeof(params{})]struct{}
	_ [unsafe.Sizeof(params{}) - 120]struct{}
	_ [64 - unsafe.Sizeof(sqe{})]struct{}
	_ [unsafe.Sizeof(sqe{}) - 64]struct{}
	_ [16 - unsafe.Sizeof(cqe{})]struct{}
	_ [unsafe.Sizeof(cqe{}) - 16]struct{}
)

// Ring is one io_uring instance with room for Cap sends per Submit. It is not safe
// for concurrent use: one goroutine at a time queues and submits.
type Ring struct {
	fd      int
	ringMem []byte // the submission and completion rings (one mapping)
	sqeMem  []byte

	sqTail  *uint32 // written by us, read by the kernel
	sqHead  *uint32 // written by the kernel
	sqMask  uint32
	sqArray []uint32
	sqes    []sqe
	cqHead  *uint32 // written by us
	cqTail  *uint32 // written by the kernel
	cqMask  uint32
	cqes    []cqe

	queued []Send // what Submit sends next
	broken error  // set when the ring can no longer be trusted; every later Submit fails
}

// Send is one queued send and, after Submit, its outcome.
type Send struct {
	FD uintptr
	B  []byte
	// N is how many bytes the socket took; Errno is the send's error (EAGAIN: the
	// socket took nothing now). Set by Submit.
	N     int
	Errno syscall.Errno
}

// New sets up a ring with room for entries sends per Submit (a power of two, at most
// 4096). It fails where io_uring is missing or forbidden (an old kernel, a seccomp
// filter, kernel.io_uring_disabled): callers then send one system call at a time.
func New(entries int) (*Ring, error) {
	if entries <= 0 || entries > 4096 || entries&(entries-1) != 0 {
		return nil, fmt.Errorf("uring: %d entries: want a power of two up to 4096", entries)
	}
	var p params
	p.flags = setupCoopTaskrun | setupSubmitAll
	fd, e := setup(uint32(entries), &p)
	if e == syscall.EINVAL {
		// Kernels before 5.19 know neither flag.
		p = params{}
		fd, e = setup(uint32(entries), &p)
	}
	if e != 0 {
		return nil, fmt.Errorf("uring: io_uring_setup: %w", e)
	}
	r := &Ring{fd: fd}
	if err := r.mmap(&p); err != nil {
		_ = syscall.Close(fd)
		return nil, err
	}
	r.queued = make([]Send, 0, entries)
	return r, nil
}

func setup(entries uint32, p *params) (int, syscall.Errno) {
	fd, _, e := syscall.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	return int(fd), e
}

func (r *Ring) mmap(p *params) error {
	if p.features&featSingleMmap == 0 {
		return errors.New("uring: kernel without IORING_FEAT_SINGLE_MMAP (before 5.4)")
	}
	sqSize := uintptr(p.sqOff.array) + uintptr(p.sqEntries)*4
	cqSize := uintptr(p.cqOff.cqes) + uintptr(p.cqEntries)*unsafe.Sizeof(cqe{})
	size := max(sqSize, cqSize)
	mem, err := syscall.Mmap(r.fd, offSQRing, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("uring: mmap rings: %w", err)
	}
	sqeMem, err := syscall.Mmap(r.fd, offSQEs, int(uintptr(p.sqEntries)*unsafe.Sizeof(sqe{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		_ = syscall.Munmap(mem)
		return fmt.Errorf("uring: mmap entries: %w", err)
	}
	r.ringMem, r.sqeMem = mem, sqeMem
	base := unsafe.Pointer(&mem[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&sqeMem[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	return nil
}

// Cap is how many sends one Submit takes.
func (r *Ring) Cap() int { return cap(r.queued) }

// Queued is the sends queued for the next Submit.
func (r *Ring) Queued() []Send { return r.queued }

// Queue adds a send of b on the non-blocking socket fd to the next Submit; false
// when Cap are queued already. b must stay unchanged until Submit returns, and fd open.
func (r *Ring) Queue(fd uintptr, b []byte) bool {
	if len(r.queued) == cap(r.queued) {
		return false
	}
	r.queued = append(r.queued, Send{FD: fd, B: b})
	return true
}

// Reset drops what is queued.
func (r *Ring) Reset() {
	clear(r.queued)
	r.queued = r.queued[:0]
}

// Submit sends everything queued with one io_uring_enter (more only when a signal
// interrupts it) and sets each Send's N and Errno. Each send is MSG_DONTWAIT: it
// completes during the call, so Submit never waits for a peer. Its error means the
// ring failed, and every later Submit fails too: the Sends the kernel never took
// have Errno EAGAIN (nothing was sent: the caller may send them another way), those
// it took without posting their outcome have ECANCELED (their bytes may or may not
// have gone out).
func (r *Ring) Submit() error {
	n := uint32(len(r.queued))
	if n == 0 {
		return r.broken
	}
	if r.broken != nil {
		r.notSentFrom(0)
		return r.broken
	}
	tail := *r.sqTail // only this goroutine writes it
	for i := range r.queued {
		s := &r.queued[i]
		idx := (tail + uint32(i)) & r.sqMask
		e := &r.sqes[idx]
		*e = sqe{opcode: opSend, fd: int32(s.FD), len: uint32(len(s.B)),
			msgFlags: syscall.MSG_DONTWAIT | syscall.MSG_NOSIGNAL, userData: uint64(i)}
		if len(s.B) > 0 {
			e.addr = uint64(uintptr(unsafe.Pointer(&s.B[0])))
		}
		r.sqArray[idx] = idx
		s.N, s.Errno = 0, syscall.ECANCELED
	}
	atomic.StoreUint32(r.sqTail, tail+n)
	submitted, completed := uint32(0), uint32(0)
	for completed < n {
		toSubmit := n - submitted
		got, _, e := syscall.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(n-completed),
			enterGetEvents, 0, 0)
		switch {
		case e == syscall.EINTR:
		case e != 0:
			r.broken = fmt.Errorf("uring: io_uring_enter: %w", e)
		case uint32(got) > toSubmit:
			r.broken = fmt.Errorf("uring: io_uring_enter submitted %d of %d", got, toSubmit)
		default:
			submitted += uint32(got)
		}
		completed += r.reap()
		if r.broken != nil {
			// The kernel's head says which entries it took; the rest it never will.
			r.notSentFrom(int(atomic.LoadUint32(r.sqHead) - tail))
			return r.broken
		}
	}
	return nil
}

// reap reads the completions posted so far into their Sends.
func (r *Ring) reap() uint32 {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail)
	for h := head; h != tail; h++ {
		c := r.cqes[h&r.cqMask]
		if c.userData < uint64(len(r.queued)) {
			s := &r.queued[c.userData]
			if c.res >= 0 {
				s.N, s.Errno = int(c.res), 0
			} else {
				s.N, s.Errno = 0, syscall.Errno(-c.res)
			}
		}
	}
	atomic.StoreUint32(r.cqHead, tail)
	return tail - head
}

// notSentFrom marks the Sends from i on, which the kernel did not take, as not sent.
func (r *Ring) notSentFrom(i int) {
	for j := i; j < len(r.queued); j++ {
		r.queued[j].N, r.queued[j].Errno = 0, syscall.EAGAIN
	}
}

// Err is the error that broke the ring, if one did.
func (r *Ring) Err() error { return r.broken }

// Close releases the ring. Nothing may be queued or submitted afterwards.
func (r *Ring) Close() error {
	err := errors.Join(syscall.Munmap(r.sqeMem), syscall.Munmap(r.ringMem), syscall.Close(r.fd))
	r.sqeMem, r.ringMem = nil, nil
	if err != nil {
		return fmt.Errorf("uring: close: %w", err)
	}
	return nil
}
