package bench

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sourceAddrs is how many loopback source addresses the connect scenario's clients
// are spread over.
const sourceAddrs = 64

// sourceDialers returns dialers that connect from 127.88.0.1 to 127.88.0.64 in
// turn when the server at addr is on the loopback network, nil otherwise (or when
// those addresses cannot be bound).
//
// Why: every bench client connecting from 127.0.0.1 to the one server port makes the
// kernel search for a free ephemeral port for each connect among ports it already
// uses for that destination: with 19,000 clients, their negotiate connections and the
// dropped clients' TIME_WAIT sockets, more than the 28,232 ports of the default range,
// connect() scanned thousands of taken ports each (perf record of a worker during the
// 19,000 storm: __inet_hash_connect and __inet_check_established, 31 % of the load
// generator's CPU). Real clients come from many addresses. IP_BIND_ADDRESS_NO_PORT
// lets connect() choose the port for the 4-tuple, so ports are shared between the
// source addresses.
func sourceDialers(addr string) []net.Dialer {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		if host != "localhost" {
			return nil
		}
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip.To4() == nil || !ip.IsLoopback() {
		return nil
	}
	// Linux routes all of 127.0.0.0/8 to lo; check that this one may be bound.
	probe, err := net.ListenPacket("udp4", "127.88.0.1:0")
	if err != nil {
		return nil
	}
	probe.Close()
	ds := make([]net.Dialer, sourceAddrs)
	for i := range ds {
		ds[i] = net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 88, 0, byte(1+i))},
			KeepAlive: -1, // the hub pings every 15 s; TCP keep-alive adds nothing
			Control:   bindNoPort,
		}
	}
	return ds
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT: bind() takes the address only, and the
// port is chosen at connect() for the whole 4-tuple.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
