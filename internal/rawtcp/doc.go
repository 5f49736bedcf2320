// Package rawtcp gives TCP connections whose reads and writes are raw, non-blocking
// system calls, waiting for readiness through the runtime's poller as net does.
//
// Why: every system call made through package syscall tells the scheduler that the
// thread may block (entersyscall). When the whole process was idle, the first such call
// wakes the runtime's monitor thread (sysmon) from its deep sleep and resets its polling
// interval to 20 µs, so that it then wakes about 50 times a millisecond before it backs
// off. A server that goes idle between bursts (a broadcast 25 times a second, a stream of
// invocations at 12,000/s) pays that at every burst: sysmon's wake-ups were 8–10 % of the
// server's CPU (docs/performance.md, "Sysmon"). A non-blocking read or send never waits
// for the peer, so there is no processor to hand over meanwhile, and the bookkeeping buys
// nothing. Linux only; elsewhere Wrap returns the connection as it is.
package rawtcp

import "net"

// Listener wraps every connection ln accepts with Wrap.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
