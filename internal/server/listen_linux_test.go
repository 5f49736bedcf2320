package server

import (
	"context"
	"net"
	"syscall"
	"testing"
)

// A connection accepted from Listen has TCP keep-alive as net.Listen gives it (15 s
// idle, 15 s interval, 9 probes), although nothing sets it per connection: it is
// inherited from the listening socket.
func TestListenKeepAliveInherited(t *testing.T) {
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan error, 1)
	var cc net.Conn
	go func() {
		var err error
		cc, err = net.Dial("tcp", ln.Addr().String())
		dialed <- err
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-dialed; err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name       string
		level, opt int
		value      int
	}{
		{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15},
		{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
		{"TCP_KEEPCNT", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
		{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
	}
	if err := rc.Control(func(fd uintptr) {
		for _, w := range want {
			v, err := syscall.GetsockoptInt(int(fd), w.level, w.opt)
			if err != nil || v != w.value {
				t.Errorf("%s = %d, %v; want %d", w.name, v, err, w.value)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
}
