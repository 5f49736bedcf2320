package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
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
	c := &rawClient{nc: nc, br: bufio.NewReaderSize(nc, 4096), user: user, done: make(chan struct{})}
	if err := c.handshake(u, token); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *rawClient) handshake(u *url.URL, token string) error {
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Version: 13\r\n" +
		"Authorization: Bearer " + token + "\r\n\r\n"
	if _, err := io.WriteString(c.nc, req); err != nil {
		return err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("bench: connect: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 101 ")) {
		return fmt.Errorf("bench: connect: %s", bytes.TrimSpace(line))
	}
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("bench: connect: %w", err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	if err := c.write(opText, protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: "json", Version: 1})); err != nil {
		return err
	}
	var buf []byte
	op, buf, err := c.readMessage(buf)
	if err != nil {
		return fmt.Errorf("bench: handshake: %w", err)
	}
	if op != opText || !bytes.Equal(buf, []byte("{}\x1e")) {
		return fmt.Errorf("bench: handshake refused: %q", buf)
	}
	return nil
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
	f := make([]byte, 0, 14+len(payload))
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
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i&3])
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(f)
	return err
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

// readLoop reads messages until the connection ends and gives every bench message
// to rv as client i's.
func (c *rawClient) readLoop(rv *receiver, i int) {
	var buf []byte
	var err error
	defer func() {
		if c.closing.Load() {
			err = nil
		}
		c.err = err
		close(c.done)
	}()
	for {
		var op byte
		op, buf, err = c.readMessage(buf)
		if err != nil {
			return
		}
		switch op {
		case opClose:
			err = fmt.Errorf("bench: the server closed the WebSocket: %q", buf)
			return
		case opText:
		default:
			err = errFrame
			return
		}
		for rec := buf; len(rec) > 0; {
			end := bytes.IndexByte(rec, 0x1e)
			if end < 0 {
				rv.bad.Add(1) // an unterminated record
				break
			}
			if cerr := rv.rawRecord(i, rec[:end]); cerr != nil {
				err = cerr
				return
			}
			rec = rec[end+1:]
		}
		if cap(buf) > keepRawBuffer {
			buf = nil
		}
	}
}

// keepRawBuffer is the largest read buffer a raw client keeps between messages.
const keepRawBuffer = 64 << 10

var (
	argumentsKey = []byte(`"arguments":[`)
	typeKey      = []byte(`"type":`)
)

// rawRecord handles one JSON hub message: an invocation is recorded, a Ping ignored,
// a Close ends the connection (the error returned).
func (rv *receiver) rawRecord(i int, rec []byte) error {
	t := bytes.Index(rec, typeKey)
	if t < 0 {
		rv.bad.Add(1)
		return nil
	}
	typ, _ := leadingInt(rec[t+len(typeKey):])
	switch typ {
	case 1:
	case 7:
		return fmt.Errorf("bench: the server closed the connection: %s", rec)
	default:
		return nil // pings and anything else a receiver ignores
	}
	a := bytes.Index(rec, argumentsKey)
	if a < 0 {
		rv.bad.Add(1)
		return nil
	}
	rest := rec[a+len(argumentsKey):]
	ns, n := leadingInt(rest)
	if n == 0 || n >= len(rest) || rest[n] != ',' {
		rv.bad.Add(1)
		return nil
	}
	seq, m := leadingInt(rest[n+1:])
	if m == 0 {
		rv.bad.Add(1)
		return nil
	}
	rv.record(i, time.Unix(0, ns), seq)
	return nil
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
