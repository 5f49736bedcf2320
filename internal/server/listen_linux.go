package server

import (
	"net"
	"syscall"
)

func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1, // not per accepted connection: they inherit the listener's
		Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			cerr := rc.Control(func(fd uintptr) {
				for _, o := range [...]struct{ level, name, value int }{
					{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(keepAliveIdle.Seconds())},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(keepAliveInterval.Seconds())},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount},
				} {
					if err = syscall.SetsockoptInt(int(fd), o.level, o.name, o.value); err != nil {
						return
					}
				}
			})
			if cerr != nil {
				return cerr
			}
			return err
		},
	}
}
