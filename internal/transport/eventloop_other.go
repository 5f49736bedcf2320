//go:build !linux

package transport

import (
	"context"
	"errors"
	"syscall"
)

// EventLoop is the readiness-based reader of WebSocket connections. Only Linux has one
// (epoll); elsewhere every connection keeps a goroutine blocked in Read.
type EventLoop struct{}

func (p *EventLoop) register(*WebSocket) error {
	return errors.New("websocket: no poller on this system")
}

func (p *EventLoop) unregister(*WebSocket) {}

func tuneSocket(syscall.RawConn) {}

// haveEventLoop: without an event loop a connection's socket is not used directly
// (no RawConn is kept), so readNow and sendNow are never called here.
const haveEventLoop = false

var errNoRawSocket = errors.New("websocket: no raw socket I/O on this system")

func readNow(uintptr, []byte) (int, error) { return 0, errNoRawSocket }

func sendNow(uintptr, []byte) (int, error) { return 0, errNoRawSocket }

func (p *EventLoop) dispatch(ws *WebSocket) { go ws.run() }

// Wait returns at once: there is no loop goroutine here (each connection's reader
// ends with its socket).
func (p *EventLoop) Wait(context.Context) error { return nil }
