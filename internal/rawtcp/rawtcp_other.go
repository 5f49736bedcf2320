//go:build !linux

package rawtcp

import "net"

// Wrap returns c: only Linux has the raw path.
func Wrap(c net.Conn) net.Conn { return c }
