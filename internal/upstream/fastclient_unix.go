//go:build unix

package upstream

import "syscall"

// alive reports whether an idle connection may carry the next request: the server has
// not closed it (nor sent anything unasked). A non-blocking peek; net/http learns the
// same from the reader goroutine it keeps on every idle connection.
func (fc *fastConn) alive() bool {
	if fc.rc == nil {
		return true
	}
	ok := true
	var b [1]byte
	err := fc.rc.Read(func(fd uintptr) bool {
		// Nothing to read is the only good answer: 0 bytes is the server's FIN, bytes
		// are an answer nobody asked for, other errors a broken connection.
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait for readability
	})
	return ok && err == nil
}
