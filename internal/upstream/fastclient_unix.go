//go:build unix

package upstream

import "syscall"

// rawSteps are the callbacks a fastConn passes to RawConn.Read, bound to it once when
// it is dialed (a closure made per call would be an allocation per call), with the
// state they share with their caller.
type rawSteps struct {
	peek, await func(fd uintptr) bool
	ok          bool  // peek: the connection may be reused
	written     bool  // await: the request was written
	err         error // await: the write's error
}

func (r *rawSteps) bind(fc *fastConn) {
	r.peek = r.peekStep
	r.await = func(uintptr) bool { return r.awaitStep(fc) }
}

// alive reports whether an idle connection may carry the next request: the server has
// not closed it (nor sent anything unasked). A non-blocking peek; net/http learns the
// same from the reader goroutine it keeps on every idle connection.
func (fc *fastConn) alive() bool {
	if fc.rc == nil {
		return true
	}
	fc.raw.ok = true
	err := fc.rc.Read(fc.raw.peek)
	return fc.raw.ok && err == nil
}

func (r *rawSteps) peekStep(fd uintptr) bool {
	// Nothing to read is the only good answer: 0 bytes is the server's FIN, bytes
	// are an answer nobody asked for, other errors a broken connection.
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	r.ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true // never wait for readability
}

// writeAndAwait writes the request, then waits until the connection is readable, so
// that the response is read with one read instead of a read that finds nothing (the
// answer cannot be there yet: EAGAIN), the wait, and a second read.
//
// The write happens inside RawConn.Read's callback on purpose. RawConn.Read first
// clears the readiness the poller recorded for the connection, then calls the
// callback, then waits for readiness reported after that point. Written before
// RawConn.Read, an answer arriving in between, and reported by the poller before the
// clearing, would be forgotten, and the wait would last until the deadline. Written
// inside, the answer can only be reported after the clearing, and the wait ends at
// once (TestWriteAndAwaitAnswerAlreadyThere). The write takes the connection's write
// lock, which is independent of the read lock RawConn.Read holds.
//
// A wake-up without an answer (the peer's FIN, an error) is harmless: the response
// read that follows sees the EOF or the error, or waits as a read does. The deadline
// get set bounds the wait; abort's past deadline ends it at once.
func (fc *fastConn) writeAndAwait() error {
	if fc.rc == nil {
		return fc.write()
	}
	fc.raw.written, fc.raw.err = false, nil
	err := fc.rc.Read(fc.raw.await)
	if werr := fc.raw.err; werr != nil {
		fc.raw.err = nil
		return werr
	}
	return err
}

func (r *rawSteps) awaitStep(fc *fastConn) bool {
	if r.written {
		return true // readable: the response is (at least partly) there
	}
	r.written = true
	r.err = fc.write()
	return r.err != nil // false: wait for the answer before reading it
}
