//go:build !linux

package uring

import (
	"errors"
	"syscall"
)

var errUnsupported = errors.New("uring: io_uring is Linux only")

// Ring is not available outside Linux: New always fails.
type Ring struct{}

// Send is one queued send and its outcome.
type Send struct {
	FD    uintptr
	B     []byte
	N     int
	Errno syscall.Errno
}

// New fails: io_uring is Linux only.
func New(int) (*Ring, error) { return nil, errUnsupported }

func (*Ring) Cap() int                   { return 0 }
func (*Ring) Queued() []Send             { return nil }
func (*Ring) Queue(uintptr, []byte) bool { return false }
func (*Ring) Reset()                     {}
func (*Ring) Submit() error              { return errUnsupported }
func (*Ring) Err() error                 { return errUnsupported }
func (*Ring) Close() error               { return nil }
