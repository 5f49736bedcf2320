// Package uring sends on many non-blocking sockets with one system call, through a
// minimal Linux io_uring of IORING_OP_SEND entries only.
//
// Why: a broadcast to N idle connections is N small sends, and on this project's test
// machine (a paravirtualised guest) a system call's entry and exit alone cost about
// 1 µs, a sixth of a delivery's whole cost. A ring submits a few hundred sends per
// io_uring_enter; each is MSG_DONTWAIT, so it completes during that call and the
// caller never waits for a peer. Elsewhere, and where io_uring is forbidden (seccomp,
// kernel.io_uring_disabled) or too old, New fails and callers send one at a time.
//
// No io_uring library was served by the module proxy this project uses; this is the
// ~200 lines of it that a send needs (see docs/dependencies.md).
package uring
