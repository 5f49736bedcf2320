//go:build !linux

package bench

import "syscall"

// childProcAttr: only Linux can have a child killed with its parent; elsewhere a
// child ends when its stdin closes (the servers and workers the bench starts watch it)
// or when the bench stops it.
func childProcAttr() *syscall.SysProcAttr { return nil }
