package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// rawClient is a bench WebSocket client of the JSON hub protocol written against the
// socket, for the REST scenario's receivers: where client.Conn reads each message
// through coder/websocket (a context and its timeout goroutine per read, a copy per
// message) and decodes it into a protocol.Invocation, this one reads frames from a
// buffered reader into one reused buffer and takes the two numbers of a bench
// message (send time and sequence) straight from the JSON text. It answers the
// server's WebSocket pings, sends a hub Ping every rawPingInterval (the server closes
// a client silent for its client timeout, 30 s by default) and counts a message it
// cannot read as bad.
type rawClient struct {
	nc   net.Conn
	br   *bufio.Reader
	user string

	wmu     sync.Mutex // one frame written at a time
	closing atomic.Bool
	done    chan struct{}
	err     error // why the read loop ended; set before done is closed
}

// rawPingInterval is how often a raw client sends a hub Ping (the client SDKs' 15 s).
const rawPingInterval = 15 * time.Second

// rawOK reports whether the raw client can stand in for client.Conn.
func (e *env) rawOK() bool {
	return e.o.Transport == "websockets" && !e.proto.Binary() && strings.HasPrefix(e.endpoint, "http://")
}

// dialRaw opens a WebSocket to hubURL (http://host/client/?hub=...) without
// negotiating (the server takes a WebSocket without id as a new connection, as
// SignalR's skipNegotiation does) and completes the JSON handshake.
func dialRaw(ctx context.Context, hubURL, token, user string) (*rawClient, error) {
	u, err := url.Parse(hubURL)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c := newRawClient(nc, user, 4096)
	var key [wsKeyLen]byte
	newWebSocketKey(&key)
	req := appendUpgradeRequest(nil, []byte(u.RequestURI()), u.Host, key[:], "Authorization: Bearer "+token+"\r\n")
	if err := c.open(req, key[:]); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// dialRawFloor opens a WebSocket to the floor server at addr (host:port): no hub
// handshake, the floor writes invocation frames from the start.
func dialRawFloor(ctx context.Context, addr string) (*rawClient, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	c := newRawClient(nc, "", rawReadBuffer)
	var key [wsKeyLen]byte
	newWebSocketKey(&key)
	if err := c.upgrade(appendUpgradeRequest(nil, []byte("/ws"), addr, key[:], ""), key[:]); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// newRawClient wraps a connected socket; bufSize is its read buffer.
func newRawClient(nc net.Conn, user string, bufSize int) *rawClient {
	return &rawClient{nc: nc, br: bufio.NewReaderSize(nc, bufSize), user: user, done: make(chan struct{})}
}

// wsKeyLen is the length of a Sec-WebSocket-Key: 16 random bytes in base64.
const wsKeyLen = 24

// newWebSocketKey fills key with a new Sec-WebSocket-Key.
func newWebSocketKey(key *[wsKeyLen]byte) {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	base64.StdEncoding.Encode(key[:], raw[:])
}

// appendUpgradeRequest appends the WebSocket upgrade request of target (a request
// URI) on host with key; header is more header lines, each ending in CRLF.
func appendUpgradeRequest(b, target []byte, host string, key []byte, header string) []byte {
	b = append(b, "GET "...)
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	b = append(b, key...)
	b = append(b, "\r\nSec-WebSocket-Version: 13\r\n"...)
	b = append(b, header...)
	return append(b, "\r\n"...)
}

// jsonHandshake is the JSON hub protocol's handshake request.
var jsonHandshake = protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: "json", Version: 1})

// open sends the upgrade request req (made with key), checks the server's 101 answer
// as a WebSocket client must (status, Upgrade, Connection, Sec-WebSocket-Accept),
// then sends the JSON hub handshake and waits for its answer, which must be a
// handshake response without error.
func (c *rawClient) open(req, key []byte) error {
	if err := c.upgrade(req, key); err != nil {
		return err
	}
	return c.hubHandshake()
}

// upgrade is open's WebSocket part: the upgrade request and its answer.
func (c *rawClient) upgrade(req, key []byte) error {
	if err := writeAwait(c.nc, c.br, req); err != nil {
		return fmt.Errorf("bench: connect: %w", err)
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("bench: connect: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 101 ")) {
		return fmt.Errorf("bench: connect: %s", bytes.TrimSpace(line))
	}
	var upgrade, connection, accept bool
	if err := readHeader(c.br, func(name, value []byte) error {
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = bytes.EqualFold(value, []byte("websocket"))
		case bytes.EqualFold(name, []byte("Connection")):
			connection = headerHasToken(value, "upgrade")
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			accept = validAccept(value, key)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("bench: connect: %w", err)
	}
	if !upgrade || !connection || !accept {
		return errors.New("bench: connect: 101 without a valid WebSocket upgrade (Upgrade, Connection, Sec-WebSocket-Accept)")
	}
	return nil
}

// hubHandshake is open's hub protocol part: the JSON handshake and its answer.
func (c *rawClient) hubHandshake() error {
	var f [64]byte
	if err := writeAwait(c.nc, c.br, appendFrame(f[:0], opText, jsonHandshake)); err != nil {
		return fmt.Errorf("bench: handshake: %w", err)
	}
	var acc []byte // a response spread over several messages
	for {
		var buf [64]byte
		op, m, err := c.readMessage(buf[:0])
		if err != nil {
			return fmt.Errorf("bench: handshake: %w", err)
		}
		if op != opText {
			return fmt.Errorf("bench: handshake: frame %#x instead of the handshake response: %q", op, m)
		}
		if acc != nil {
			acc = append(acc, m...)
			m = acc
		}
		errText, _, err := protocol.ParseHandshakeResponse(m)
		switch {
		case errors.Is(err, protocol.ErrIncomplete) && len(m) < maxHandshake:
			if acc == nil {
				acc = append([]byte(nil), m...)
			}
			continue
		case err != nil:
			return fmt.Errorf("bench: handshake: %w", err)
		case errText != "":
			return fmt.Errorf("bench: handshake rejected: %s", errText)
		}
		return nil
	}
}

// maxHandshake bounds a handshake response spread over several messages.
const maxHandshake = 4096

// readHeader reads an HTTP header up to its empty line and calls fn with each field's
// name and trimmed value (valid until the next read); fn's error ends it.
func readHeader(br *bufio.Reader, fn func(name, value []byte) error) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return nil
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		if err := fn(name, bytes.TrimSpace(value)); err != nil {
			return err
		}
	}
}

// headerHasToken reports whether a comma-separated header value holds token
// (case-insensitively), as "Connection: keep-alive, Upgrade" holds "upgrade".
func headerHasToken(value []byte, token string) bool {
	for len(value) > 0 {
		var t []byte
		t, value, _ = bytes.Cut(value, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(token)) {
			return true
		}
	}
	return false
}

// validAccept reports whether accept is the Sec-WebSocket-Accept of key.
func validAccept(accept, key []byte) bool {
	want := acceptKey(key)
	return bytes.Equal(accept, want[:])
}

// acceptKey is the Sec-WebSocket-Accept of key (RFC 6455 section 4.2.2: base64 of
// the SHA-1 of the key and the protocol's GUID).
func acceptKey(key []byte) [28]byte {
	h := sha1.New()
	h.Write(key)
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	var sum [sha1.Size]byte
	var out [28]byte
	base64.StdEncoding.Encode(out[:], h.Sum(sum[:0]))
	return out
}

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// write sends payload as one masked frame.
func (c *rawClient) write(op byte, payload []byte) error {
	return c.writeFrame(appendFrame(make([]byte, 0, 14+len(payload)), op, payload))
}

// writeFrame writes f, one or more whole frames.
func (c *rawClient) writeFrame(f []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(f)
	return err
}

// appendFrame appends payload as one masked frame, with a mask from crypto/rand.
func appendFrame(f []byte, op byte, payload []byte) []byte {
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	return appendMaskedFrame(f, op, payload, mask)
}

// appendMaskedFrame appends payload as one frame masked with mask.
func appendMaskedFrame(f []byte, op byte, payload []byte, mask [4]byte) []byte {
	f = append(f, 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, mask[:]...)
	start := len(f)
	f = slices.Grow(f, len(payload))[:start+len(payload)]
	for i, b := range payload {
		f[start+i] = b ^ mask[i&3]
	}
	return f
}

// writeAwait writes b to nc and returns once nc has something to read (an error when
// its deadline passes first), for a request whose answer br reads next, so that the
// read that follows finds the answer instead of a read that finds nothing (EAGAIN)
// and parks first: awaitWriter's way (stubserver.go). Plain write when br holds
// unread bytes already.
func writeAwait(nc net.Conn, br *bufio.Reader, b []byte) error {
	return newAwaitWriter(nc).write(b, br.Buffered() == 0)
}

// errFrame is a frame the bench does not expect from the server.
var errFrame = errors.New("bench: unexpected WebSocket frame")

// readMessage reads one whole data message (after any control frames, which it
// answers) into buf[:0] and returns its opcode.
func (c *rawClient) readMessage(buf []byte) (op byte, msg []byte, err error) {
	msg = buf[:0]
	op = 0xff
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return 0, msg, err
		}
		if h[1]&0x80 != 0 { // a server never masks
			return 0, msg, errFrame
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(c.br, e[:]); err != nil {
				return 0, msg, err
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(c.br, e[:]); err != nil {
				return 0, msg, err
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		if n > 1<<26 {
			return 0, msg, errFrame
		}
		fin, fop := h[0]&0x80 != 0, h[0]&0x0f
		if fop >= opClose { // control frame, between fragments or not
			var p [125]byte
			if n > 125 || !fin {
				return 0, msg, errFrame
			}
			if _, err := io.ReadFull(c.br, p[:n]); err != nil {
				return 0, msg, err
			}
			switch fop {
			case opPing:
				if err := c.write(opPong, p[:n]); err != nil {
					return 0, msg, err
				}
			case opClose:
				return opClose, append(msg[:0], p[:n]...), nil
			}
			continue
		}
		switch {
		case fop != opContinuation && op == 0xff:
			op = fop
		case fop == opContinuation && op != 0xff:
		default:
			return 0, msg, errFrame
		}
		start := len(msg)
		msg = append(msg, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, msg[start:]); err != nil {
			return 0, msg, err
		}
		if fin {
			return op, msg, nil
		}
	}
}

// rawReadBuffer is a raw client's read buffer: a read takes whatever the socket holds
// up to this, which under load is many records (the server writes every frame queued
// to a connection in one WebSocket frame). Frames larger than this are read through it
// record by record; only a record cut by the end of a frame (a fragmented message) or
// longer than the buffer is copied aside.
const rawReadBuffer = 4096

// rawIdleBuffer is the read buffer of a raw client without a receiver: enough for a
// control frame (longer messages are read through it as the others are).
const rawIdleBuffer = 256

// keepRawBuffer is the most a raw client keeps of the buffer of such records.
const keepRawBuffer = 64 << 10

// readLoop reads the socket in chunks until the connection ends and gives every
// bench message to rv as client i's; with rv nil (the connect scenario's clients,
// which receive only pings) it watches for the server's Close, with a small buffer.
// It hands rv the stamps of a read together, with the one clock reading of the read
// that brought them: per delivery it costs a scan for the record separator and two
// integers (the overload row's 10,000 receivers had cost the load generator more
// than the server spends per delivery; docs/performance.md, S1).
func (c *rawClient) readLoop(rv *receiver, i int) {
	size := rawReadBuffer
	if rv == nil {
		size = rawIdleBuffer
	}
	c.readRecords(&rawStamps{rv: rv, i: i}, size)
}

// rawSink takes the JSON hub messages a raw client's read loop reads.
type rawSink interface {
	// record handles one whole message (without its record separator) of a read
	// made at now; rec is valid until it returns. An error ends the read loop.
	record(rec []byte, now time.Time) error
	// flush ends a read: the records since the last flush came with it.
	flush(now time.Time)
	// bad counts a message the bench cannot read.
	bad()
}

// readRecords reads the socket in chunks of up to size bytes until the connection
// ends, and gives every JSON hub message to sink. It takes the records straight from
// its read buffer: only a record cut by the buffer or by its frame is copied aside.
func (c *rawClient) readRecords(sink rawSink, size int) {
	var err error
	defer func() {
		if c.closing.Load() {
			err = nil
		}
		c.err = err
		close(c.done)
	}()
	buf := make([]byte, max(size, c.br.Buffered()))
	w := 0
	if c.br.Buffered() > 0 {
		// What the handshake's reader holds already (only that: a read into a buffer
		// smaller than the reader's would fill the reader and lose the rest).
		w, _ = c.br.Read(buf)
	}
	c.br = nil
	r := 0
	var (
		sp     recordSplitter
		inData bool   // buf[r:] is in a data frame's payload, left bytes of it to come
		left   uint64 // (the frame's bytes in buf[r:w] included)
		fin    bool   // that frame ends its message
		inMsg  bool   // a message started and has not ended
	)
	now := time.Now()
	for {
		for {
			if !inData {
				h, ok, ferr := frameHeader(buf[r:w])
				if ferr != nil {
					err = ferr
					return
				}
				if !ok {
					break
				}
				if h.op >= opClose { // control frame, between fragments or not
					if !h.fin || h.payload > 125 {
						err = errFrame
						return
					}
					if uint64(w-r-h.len) < h.payload {
						break
					}
					payload := buf[r+h.len : r+h.len+int(h.payload)]
					r += h.len + int(h.payload)
					switch h.op {
					case opPing:
						if err = c.write(opPong, payload); err != nil {
							return
						}
					case opClose:
						err = fmt.Errorf("bench: the server closed the WebSocket: %q", payload)
						return
					}
					continue
				}
				if (h.op == opText) == inMsg || (h.op != opText && h.op != opContinuation) {
					err = errFrame // not text, or a message inside a message
					return
				}
				r += h.len
				inData, left, fin, inMsg = true, h.payload, h.fin, true
			}
			chunk := buf[r : r+int(min(left, uint64(w-r)))]
			used, serr := sp.scan(sink, chunk, now)
			if serr != nil {
				err = serr
				return
			}
			if tail := chunk[used:]; uint64(len(chunk)) == left && len(tail) > 0 {
				// The frame ends inside a record: the record goes on in the next
				// fragment, or ends unterminated with the message.
				sp.carry = append(sp.carry, tail...)
				used = len(chunk)
			}
			r += used
			left -= uint64(used)
			if left > 0 {
				break // the rest of the frame is still to be read
			}
			inData = false
			if fin {
				inMsg = false
				if len(sp.carry) > 0 {
					sink.bad() // an unterminated record
					sp.dropCarry()
				}
			}
		}
		sink.flush(now)
		w = copy(buf, buf[r:w]) // room for the rest of what is cut
		r = 0
		if w == len(buf) {
			// A record longer than the buffer (no header or control frame is): aside
			// with it, and read on.
			sp.carry = append(sp.carry, buf...)
			left -= uint64(w)
			w = 0
		}
		var n int
		n, err = c.nc.Read(buf[w:])
		now = time.Now()
		w += n
		if err != nil {
			return
		}
	}
}

// wsHeader is a WebSocket frame's header.
type wsHeader struct {
	fin     bool
	op      byte
	len     int    // of the header
	payload uint64 // bytes after it
}

// frameHeader reads the header of the frame at the start of b; ok is false when b
// does not hold all of it.
func frameHeader(b []byte) (h wsHeader, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	if b[1]&0x80 != 0 { // a server never masks
		return h, false, errFrame
	}
	h.fin, h.op, h.len = b[0]&0x80 != 0, b[0]&0x0f, 2
	switch n := b[1] & 0x7f; n {
	case 126:
		if len(b) < 4 {
			return h, false, nil
		}
		h.payload, h.len = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return h, false, nil
		}
		h.payload, h.len = binary.BigEndian.Uint64(b[2:]), 10
	default:
		h.payload = uint64(n)
	}
	if h.payload > 1<<26 {
		return h, false, errFrame
	}
	return h, true, nil
}

// recordSplitter cuts the payload of text messages into JSON hub messages, and
// keeps the start of one that the read buffer or its frame cut.
type recordSplitter struct{ carry []byte }

// scan gives sink every whole message in b, the payload of a text message as far as
// it was read (carry holds what went before); used is how much of b they took, up to
// and with the last record separator. now is when b was read.
func (s *recordSplitter) scan(sink rawSink, b []byte, now time.Time) (used int, err error) {
	for {
		end := bytes.IndexByte(b[used:], 0x1e)
		if end < 0 {
			return used, nil
		}
		rec := b[used : used+end]
		if len(s.carry) > 0 {
			s.carry = append(s.carry, rec...)
			rec = s.carry
		}
		used += end + 1
		err := sink.record(rec, now)
		if len(s.carry) > 0 {
			s.dropCarry()
		}
		if err != nil {
			return used, err
		}
	}
}

// dropCarry empties carry, and lets a large one go.
func (s *recordSplitter) dropCarry() {
	s.carry = s.carry[:0]
	if cap(s.carry) > keepRawBuffer {
		s.carry = nil
	}
}

// rawStamps collects the stamps of the bench messages of one read of a raw client,
// for one call to receiver.recordBatch.
type rawStamps struct {
	rv        *receiver
	i         int
	n         int
	sent, seq [64]int64
}

// record takes the stamp of a bench message.
func (s *rawStamps) record(rec []byte, now time.Time) error {
	sent, seq, ok, err := rawStamp(rec)
	switch {
	case err != nil:
		return err
	case ok:
		if s.n == len(s.seq) {
			s.flush(now)
		}
		s.sent[s.n], s.seq[s.n] = sent, seq
		s.n++
	case sent < 0:
		s.bad()
	}
	return nil
}

// bad counts a message the bench cannot read.
func (s *rawStamps) bad() {
	if s.rv != nil {
		s.rv.bad.Add(1)
	}
}

// flush records what was collected (drops it without a receiver).
func (s *rawStamps) flush(now time.Time) {
	if s.n > 0 && s.rv == nil {
		s.n = 0
	}
	if s.n > 0 {
		s.rv.recordBatch(s.i, now, s.sent[:s.n], s.seq[:s.n])
		s.n = 0
	}
}

var (
	// benchPrefix is how the server writes every bench message: read without a search.
	benchPrefix  = []byte(`{"type":1,"target":"` + target + `","arguments":[`)
	argumentsKey = []byte(`"arguments":[`)
	typeKey      = []byte(`"type":`)
)

// rawStamp reads one JSON hub message: ok with the stamp of an invocation;
// an error for a Close (the connection ends); neither for a Ping or another message a
// receiver ignores, with sent -1 when it is an invocation the bench cannot read.
func rawStamp(rec []byte) (sent, seq int64, ok bool, err error) {
	var rest []byte
	if bytes.HasPrefix(rec, benchPrefix) {
		rest = rec[len(benchPrefix):]
	} else {
		t := bytes.Index(rec, typeKey)
		if t < 0 {
			return -1, 0, false, nil
		}
		typ, _ := leadingInt(rec[t+len(typeKey):])
		switch typ {
		case 1:
		case 7:
			return 0, 0, false, fmt.Errorf("bench: the server closed the connection: %s", rec)
		default:
			return 0, 0, false, nil // pings and anything else a receiver ignores
		}
		a := bytes.Index(rec, argumentsKey)
		if a < 0 {
			return -1, 0, false, nil
		}
		rest = rec[a+len(argumentsKey):]
	}
	ns, n := leadingInt(rest)
	if n == 0 || n >= len(rest) || rest[n] != ',' {
		return -1, 0, false, nil
	}
	seq, m := leadingInt(rest[n+1:])
	if m == 0 || seq < 0 {
		return -1, 0, false, nil
	}
	return ns, seq, true, nil
}

// leadingInt parses the decimal integer at the start of b (an optional '-'); n is
// how many bytes it took, 0 when there is none.
func leadingInt(b []byte) (v int64, n int) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		n = 1
	}
	start := n
	for n < len(b) && b[n] >= '0' && b[n] <= '9' && n-start < 19 {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	if n == start {
		return 0, 0
	}
	if neg {
		v = -v
	}
	return v, n
}

// ping sends a hub Ping.
func (c *rawClient) ping() error { return c.write(opText, []byte("{\"type\":6}\x1e")) }

// Done is closed when the read loop ends.
func (c *rawClient) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (nil when it was closed by Close).
func (c *rawClient) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// ID names the client by its user (a raw client does not learn its connection id).
func (c *rawClient) ID() string { return c.user }

// Close sends a WebSocket close frame and closes the socket.
func (c *rawClient) Close() error {
	if c.closing.Swap(true) {
		return nil
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.write(opClose, []byte{0x03, 0xe8}) // 1000, normal closure
	err := c.nc.Close()
	<-c.done
	return err
}

// pingRaw pings every raw client each rawPingInterval until ctx ends.
func pingRaw(ctx context.Context, conns []*rawClient) {
	t := time.NewTicker(rawPingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range conns {
			if c != nil && !c.closing.Load() {
				_ = c.ping()
			}
		}
	}
}
