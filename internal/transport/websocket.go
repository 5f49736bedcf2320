package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// IsWebSocketUpgrade reports whether r asks for a WebSocket upgrade.
func IsWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerContainsToken(r.Header, "Connection", "upgrade")
}

func headerContainsToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// WebSocket is the server end of one SignalR WebSocket connection.
type WebSocket struct {
	c            *websocket.Conn
	writeTimeout time.Duration
}

// AcceptWebSocket upgrades the request without checking Origin: SignalR clients
// authenticate with the access token, browsers call cross-origin by design, and the
// server's optional allowed-origins list is enforced before the upgrade reaches here.
func AcceptWebSocket(w http.ResponseWriter, r *http.Request, writeTimeout time.Duration) (*WebSocket, error) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, fmt.Errorf("websocket: accept: %w", err)
	}
	// Hub message sizes are enforced by the hub protocol decoder, which sees the
	// bytes as they stream in; a WebSocket message may carry several hub messages.
	c.SetReadLimit(-1)
	return &WebSocket{c: c, writeTimeout: writeTimeout}, nil
}

// readBufs holds read buffers, taken only while a message is being read so that idle
// connections hold none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// ReadLoop reads messages until the connection fails or ctx ends, handing their bytes
// to fn in chunks of at most 16 KiB (a message may arrive in several calls; fn must
// not retain the chunk). It returns the first error of fn or of the connection; a
// normal close by the peer returns nil.
func (ws *WebSocket) ReadLoop(ctx context.Context, fn func(chunk []byte) error) error {
	for {
		_, r, err := ws.c.Reader(ctx)
		if err != nil {
			if isNormalClose(err) {
				return nil
			}
			return fmt.Errorf("websocket: read: %w", err)
		}
		if err := readMessage(r, fn); err != nil {
			if isNormalClose(err) {
				return nil
			}
			return err
		}
	}
}

func readMessage(r io.Reader, fn func(chunk []byte) error) error {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if ferr := fn(buf[:n]); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if isNormalClose(err) {
				return err
			}
			return fmt.Errorf("websocket: read: %w", err)
		}
	}
}

func isNormalClose(err error) bool {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return true
	}
	return false
}

// Write sends data as one message, binary or text.
func (ws *WebSocket) Write(ctx context.Context, data []byte, binary bool) error {
	if ws.writeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ws.writeTimeout)
		defer cancel()
	}
	typ := websocket.MessageText
	if binary {
		typ = websocket.MessageBinary
	}
	if err := ws.c.Write(ctx, typ, data); err != nil {
		return fmt.Errorf("websocket: write: %w", err)
	}
	return nil
}

// Close performs the closing handshake with a normal status (bounded by the library's
// own 5 s wait for the peer's reply).
func (ws *WebSocket) Close() error {
	err := ws.c.Close(websocket.StatusNormalClosure, "")
	if err != nil && !isNormalClose(err) {
		return fmt.Errorf("websocket: close: %w", err)
	}
	return nil
}

// CloseWithStatus closes with an error status (e.g. policy violation) and a reason.
func (ws *WebSocket) CloseWithStatus(code websocket.StatusCode, reason string) error {
	if len(reason) > 120 { // close reasons are limited to 123 bytes
		reason = reason[:120]
	}
	return ws.c.Close(code, reason)
}

// CloseNow drops the connection without a closing handshake.
func (ws *WebSocket) CloseNow() error { return ws.c.CloseNow() }
