package transport

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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

// Handler receives the events of one WebSocket connection. Data is called from
// short-lived reader goroutines, never twice at once for one connection; Closed may
// overlap a Data call that is still running.
type Handler interface {
	// Data receives the payload of data messages in chunks (valid only during the
	// call); final marks the last chunk of a message. An error stops the delivery of
	// further data: the connection stays open so that queued frames can still be
	// written and the closing handshake completed.
	Data(chunk []byte, final bool) error
	// Closed is called exactly once, after the socket is closed. err is nil after a
	// closing handshake with status 1000 or 1001 (from either side), else it says
	// what ended the connection.
	Closed(err error)
}

// closeWait bounds how long a closing handshake waits for the peer's Close frame
// before the socket is closed anyway.
const closeWait = 5 * time.Second

// WebSocket is the server end of one WebSocket connection. It holds no goroutine and
// no buffer while idle: the EventLoop reports when the socket is readable, a goroutine
// then reads what arrived into a pooled buffer, parses the frames and ends. Writes
// happen on the caller's goroutine.
//
// Every idle connection holds one, so the fields are ordered to pack (176 bytes).
type WebSocket struct {
	nc   net.Conn
	rc   syscall.RawConn // nil when the connection is not a socket (no poller)
	loop *EventLoop
	h    Handler
	fd   int32 // under loop.mu
	// seq tells this registration apart from a later one of the same fd number.
	seq uint32

	// sched is the reader's state: idle, running, or running with more readiness
	// reported meanwhile (the reader then reads again before it stops).
	sched atomic.Int32
	// hup is set once the poller reported the peer's FIN or an error: from then on a
	// short read does not mean the socket is drained, since no further edge will report
	// the EOF that waits behind the bytes.
	hup atomic.Bool
	// closed is set by the first closeSocket, which alone closes the socket.
	closed atomic.Bool

	dataOff   bool // owned by the running reader: the handler refused data; frames are parsed but not delivered
	closeSent bool // under wmu

	// Owned by the running reader.
	fr      frameReader
	pending []byte // bytes the HTTP server read past the upgrade request

	wmu        sync.Mutex // serializes frames on the wire
	closeTimer *time.Timer
}

const (
	schedIdle int32 = iota
	schedRunning
	schedAgain
)

// Accept upgrades the request to a WebSocket without checking Origin (SignalR clients
// authenticate with the access token, browsers call cross-origin by design, and the
// server's optional allowed-origins list is enforced before the upgrade reaches
// here). Events go to h once Start is called. On failure the request has been
// answered.
func (p *EventLoop) Accept(w http.ResponseWriter, r *http.Request, h Handler) (*WebSocket, error) {
	if status, err := verifyUpgrade(w, r); err != nil {
		http.Error(w, err.Error(), status)
		return nil, err
	}
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Upgrade", "websocket")
	hd.Set("Connection", "Upgrade")
	hd.Set("Sec-WebSocket-Accept", acceptKey(strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))))
	w.WriteHeader(http.StatusSwitchingProtocols)
	nc, brw, err := rc.Hijack()
	if err != nil {
		return nil, fmt.Errorf("websocket: hijack: %w", err)
	}
	if u, ok := nc.(interface{ TCP() *net.TCPConn }); ok && p != nil && haveEventLoop {
		// A connection wrapped for raw reads and writes (the server's listener): the
		// event loop reads and sends raw itself, and the wrapper would stay with every
		// idle connection (about 400 B of RSS each at S4).
		nc = u.TCP()
	}
	ws := &WebSocket{nc: nc, loop: p, h: h, fd: -1}
	// Bytes the client sent right behind its request (a pipelined first frame) sit in
	// the HTTP server's reader; everything else is read from the socket itself. The
	// bufio reader and writer are dropped here, so an idle connection keeps neither.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		ws.pending = append([]byte(nil), b...)
	}
	if sc, ok := nc.(syscall.Conn); ok && p != nil && haveEventLoop {
		if raw, err := sc.SyscallConn(); err == nil {
			ws.rc = raw
			tuneSocket(raw)
		}
	}
	return ws, nil
}

// verifyUpgrade checks the handshake request (RFC 6455 section 4.2.1).
func verifyUpgrade(w http.ResponseWriter, r *http.Request) (int, error) {
	switch {
	case !r.ProtoAtLeast(1, 1):
		return http.StatusUpgradeRequired, fmt.Errorf("websocket: handshake needs HTTP/1.1, not %q", r.Proto)
	case !IsWebSocketUpgrade(r):
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		return http.StatusUpgradeRequired, errors.New("websocket: not an upgrade request")
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, fmt.Errorf("websocket: handshake method %q is not GET", r.Method)
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		w.Header().Set("Sec-WebSocket-Version", "13")
		return http.StatusBadRequest, fmt.Errorf("websocket: unsupported version %q (only 13)", r.Header.Get("Sec-WebSocket-Version"))
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return http.StatusBadRequest, errors.New("websocket: exactly one Sec-WebSocket-Key is required")
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return http.StatusBadRequest, errors.New("websocket: Sec-WebSocket-Key is not 16 bytes in base64")
	}
	return 0, nil
}

func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Start delivers the bytes read with the request, then has the poller watch the
// socket. Call it once, after the handler is ready for events.
func (ws *WebSocket) Start() {
	ws.sched.Store(schedRunning)
	if len(ws.pending) > 0 {
		b := ws.pending
		ws.pending = nil
		ws.parse(b)
	}
	if ws.closed.Load() {
		ws.sched.Store(schedIdle)
		return
	}
	if ws.rc == nil || ws.loop.register(ws) != nil {
		// Not a pollable socket: a goroutine blocks in Read instead.
		ws.sched.Store(schedIdle)
		go ws.blockingReader()
		return
	}
	// Readiness that arrived between the upgrade and the registration is reported by
	// the registration itself; finish this run in case it was marked meanwhile.
	ws.finishRun()
}

// readable is called by the poller when the socket has something to read; hup says
// that the event also reported the peer's FIN or an error.
func (ws *WebSocket) readable(hup bool) {
	if hup {
		ws.hup.Store(true) // before the reader is scheduled, so that it sees it
	}
	for {
		switch s := ws.sched.Load(); s {
		case schedIdle:
			if ws.sched.CompareAndSwap(schedIdle, schedRunning) {
				ws.loop.dispatch(ws)
				return
			}
		case schedRunning:
			if ws.sched.CompareAndSwap(schedRunning, schedAgain) {
				return
			}
		default:
			return
		}
	}
}

func (ws *WebSocket) run() {
	ws.readAvailable()
	ws.finishRun()
}

// finishRun ends a reader run, reading again if readiness was reported meanwhile.
func (ws *WebSocket) finishRun() {
	for !ws.sched.CompareAndSwap(schedRunning, schedIdle) {
		ws.sched.Store(schedRunning)
		ws.readAvailable()
	}
}

// readBufSize is the pooled read buffer: large enough that a burst arrives in few
// reads, taken only while the socket has bytes.
const readBufSize = 16 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// readAvailable reads until the socket has nothing more, feeding the parser.
func (ws *WebSocket) readAvailable() {
	if ws.closed.Load() {
		return
	}
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		var n int
		var rerr error
		err := ws.rc.Read(func(fd uintptr) bool {
			n, rerr = readNow(fd, buf)
			return true // never wait: the poller reports readiness
		})
		if err == nil {
			err = rerr
		}
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
			return
		}
		if err != nil {
			ws.closeSocket(fmt.Errorf("websocket: read: %w", err))
			return
		}
		if n == 0 {
			ws.closeSocket(fmt.Errorf("websocket: read: %w", io.ErrUnexpectedEOF))
			return
		}
		ws.parse(buf[:n])
		if (n < len(buf) && !ws.hup.Load()) || ws.closed.Load() {
			// A short read emptied the socket; bytes arriving later are reported again.
			// After a FIN nothing more is reported: read on until the EOF.
			return
		}
	}
}

// blockingReader reads without a poller (not a socket, or epoll unavailable).
func (ws *WebSocket) blockingReader() {
	for !ws.closed.Load() {
		bp := readBufs.Get().(*[]byte)
		n, err := ws.nc.Read(*bp)
		if n > 0 {
			ws.parse((*bp)[:n])
		}
		readBufs.Put(bp)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			ws.closeSocket(fmt.Errorf("websocket: read: %w", err))
			return
		}
	}
}

// parse feeds b to the frame parser; a protocol violation closes the connection.
func (ws *WebSocket) parse(b []byte) {
	if err := ws.fr.feed(b, ws); err != nil {
		var pe protocolError
		if errors.As(err, &pe) {
			ws.failClose(StatusProtocolError, string(pe), err)
			return
		}
		ws.closeSocket(err)
	}
}

// errStop ends parsing after a close frame.
var errStop = errors.New("websocket: closed")

// data implements frameSink.
func (ws *WebSocket) data(chunk []byte, final bool) error {
	if ws.dataOff {
		return nil
	}
	if err := ws.h.Data(chunk, final); err != nil {
		ws.dataOff = true
	}
	return nil
}

// control implements frameSink.
func (ws *WebSocket) control(op byte, payload []byte) error {
	switch op {
	case opPing:
		_ = ws.writeFrame(opPong, payload)
	case opClose:
		code, reason, err := parseClose(payload)
		if err != nil {
			return err
		}
		ws.wmu.Lock()
		sent := ws.closeSent
		ws.closeSent = true
		if !sent {
			// Echo the status (RFC 6455 section 5.5.1); 1005 is never sent.
			var p []byte
			if code != StatusNoStatus {
				p = []byte{byte(code >> 8), byte(code)}
			}
			_ = ws.writeFrameLocked(opClose, p)
		}
		ws.wmu.Unlock()
		var cerr error
		if code != StatusNormalClosure && code != StatusGoingAway {
			cerr = &CloseError{Code: code, Reason: reason}
		}
		ws.closeSocket(cerr)
		return errStop
	}
	return nil
}

// CloseError is a closing handshake with a status other than 1000 or 1001.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("websocket: closed with status %d %q", e.Code, e.Reason)
}

// WriteMessage sends data as one message, binary or text.
func (ws *WebSocket) WriteMessage(data []byte, binary bool) error {
	op := byte(opText)
	if binary {
		op = opBinary
	}
	return ws.writeFrame(op, data)
}

// WriteFramed sends batch[Headroom:] as one message, writing the frame header into
// the headroom in front of it: one write, no copy.
func (ws *WebSocket) WriteFramed(batch []byte, binary bool) error {
	op := byte(opText)
	if binary {
		op = opBinary
	}
	start := putHeader(batch, Headroom, op, len(batch)-Headroom)
	ws.wmu.Lock()
	defer ws.wmu.Unlock()
	if ws.closeSent {
		return errors.New("websocket: write after close")
	}
	if _, err := ws.nc.Write(batch[start:]); err != nil {
		return fmt.Errorf("websocket: write: %w", err)
	}
	return nil
}

// rawWrite is one send on the socket through syscall.RawConn.Control. Its func is
// bound once and the object reused: a closure over the write's results escaped to
// the heap (two or three allocations per delivery).
//
// Control rather than RawConn.Write: Control only holds a reference on the
// descriptor (so that a concurrent Close cannot let its number be reused by another
// socket mid-write), where Write also takes the descriptor's write lock and resets
// the poller's write readiness, which no one waits for here (waiting is
// FinishWrite's, through net.Conn.Write). sendNow (per system) is the send itself.
type rawWrite struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr)
}

var rawWrites = sync.Pool{New: func() any {
	rw := &rawWrite{}
	rw.fn = func(fd uintptr) { rw.n, rw.err = sendNow(fd, rw.b) }
	return rw
}}

// TryWriteFramed is WriteFramed without waiting: it writes what the socket takes
// now, so that a fan-out can write to an idle connection from its own goroutine
// instead of starting a writer goroutine per delivery. When the socket took all of
// it, rest is empty. Otherwise (a full socket, or no pollable socket: then nothing
// was written) rest is the unwritten end of the message and the connection's write
// lock stays held, so that no other frame can cut into the message: FinishWrite(rest)
// must follow, from any goroutine. When another frame is being written (a Pong,
// which may wait for a client that does not read), it writes nothing, keeps no
// lock and returns ErrWriteBusy: the batch is then for WriteFramed, on a goroutine
// that may wait. A fan-out's writes never wait for one connection.
func (ws *WebSocket) TryWriteFramed(batch []byte, binary bool) (rest []byte, err error) {
	b, err := ws.lockForWrite(batch, binary)
	if err != nil || ws.rc == nil {
		return b, err
	}
	rw := rawWrites.Get().(*rawWrite)
	rw.b = b
	err = ws.rc.Control(rw.fn)
	n, werr := rw.n, rw.err
	*rw = rawWrite{fn: rw.fn}
	rawWrites.Put(rw)
	if err == nil {
		err = werr
	}
	return ws.wrote(b, n, err)
}

// ErrWriteBusy is TryWriteFramed's answer when another frame is being written.
var ErrWriteBusy = errors.New("websocket: a write is in progress")

// FinishWrite writes the rest a TryWriteFramed left, waiting for the socket as
// long as it takes (CloseWithStatus's deadline ends a write that never completes),
// and releases the write lock TryWriteFramed kept.
func (ws *WebSocket) FinishWrite(rest []byte) error {
	defer ws.wmu.Unlock()
	if _, err := ws.nc.Write(rest); err != nil {
		return fmt.Errorf("websocket: write: %w", err)
	}
	return nil
}

// Headroom is the room WriteFramed needs in front of the payload.
const Headroom = maxHeaderSize

func (ws *WebSocket) writeFrame(op byte, payload []byte) error {
	ws.wmu.Lock()
	defer ws.wmu.Unlock()
	if ws.closeSent {
		return errors.New("websocket: write after close")
	}
	return ws.writeFrameLocked(op, payload)
}

func (ws *WebSocket) writeFrameLocked(op byte, payload []byte) error {
	var hdr [maxHeaderSize]byte
	start := putHeader(hdr[:], len(hdr), op, len(payload))
	var err error
	if len(payload) <= 512 {
		// Small frames (control frames, single messages) in one write.
		var b [maxHeaderSize + 512]byte
		n := copy(b[:], hdr[start:])
		n += copy(b[n:], payload)
		_, err = ws.nc.Write(b[:n])
	} else {
		bufs := net.Buffers{hdr[start:], payload}
		_, err = bufs.WriteTo(ws.nc)
	}
	if err != nil {
		return fmt.Errorf("websocket: write: %w", err)
	}
	return nil
}

// Close starts the closing handshake with status 1000: the Close frame is sent and
// the socket closed when the peer answers, or after 5 s. It does not wait.
func (ws *WebSocket) Close() error {
	return ws.CloseWithStatus(StatusNormalClosure, "")
}

// CloseWithStatus is Close with a status and a reason (cut to the 123 bytes a close
// frame holds).
func (ws *WebSocket) CloseWithStatus(code int, reason string) error {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := make([]byte, 2, 2+len(reason))
	p[0], p[1] = byte(code>>8), byte(code)
	p = append(p, reason...)
	// A write in progress (to a client that does not read) must not hold the close
	// forever: it fails at this deadline, and so does the Close frame.
	_ = ws.nc.SetWriteDeadline(time.Now().Add(closeWait))
	ws.wmu.Lock()
	if ws.closeSent {
		ws.wmu.Unlock()
		return nil
	}
	ws.closeSent = true
	err := ws.writeFrameLocked(opClose, p)
	if err == nil && !ws.closed.Load() {
		ws.closeTimer = time.AfterFunc(closeWait, func() {
			ws.closeSocket(errors.New("websocket: the peer did not answer the close frame"))
		})
	}
	ws.wmu.Unlock()
	if err != nil {
		ws.closeSocket(err)
		return err
	}
	return nil
}

// failClose sends a Close frame with code and reason and closes the socket at once.
func (ws *WebSocket) failClose(code int, reason string, err error) {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := append([]byte{byte(code >> 8), byte(code)}, reason...)
	ws.wmu.Lock()
	if !ws.closeSent {
		ws.closeSent = true
		_ = ws.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = ws.writeFrameLocked(opClose, p)
	}
	ws.wmu.Unlock()
	ws.closeSocket(err)
}

// CloseNow closes the socket without a closing handshake.
func (ws *WebSocket) CloseNow() error {
	ws.closeSocket(errors.New("websocket: closed without a handshake"))
	return nil
}

// closeSocket closes the socket once and tells the handler.
func (ws *WebSocket) closeSocket(err error) {
	// Set before unregister: a registration racing with it sees it.
	if !ws.closed.CompareAndSwap(false, true) {
		return
	}
	if ws.rc != nil {
		ws.loop.unregister(ws)
	}
	_ = ws.nc.Close()
	ws.wmu.Lock()
	if ws.closeTimer != nil {
		ws.closeTimer.Stop()
	}
	ws.wmu.Unlock()
	go ws.h.Closed(err)
}
