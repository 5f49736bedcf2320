//go:build !linux

package bench

import "net"

// sourceDialers spreads connections over loopback addresses on Linux only (see
// srcaddr_linux.go): elsewhere the clients connect from the system's choice.
func sourceDialers(string) []net.Dialer { return nil }
