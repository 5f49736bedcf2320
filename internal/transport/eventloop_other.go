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

// sendNow writes what the non-blocking socket fd takes now.
func sendNow(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }

func (p *EventLoop) dispatch(ws *WebSocket) { go ws.run() }

// Wait returns at once: there is no loop goroutine here (each connection's reader
// ends with its socket).
func (p *EventLoop) Wait(context.Context) error { return nil }
