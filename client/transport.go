package client

import (
	"bufio"
	"bytes"
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

// transport carries bytes for a Conn. read and write are each called by one
// goroutine at a time.
type transport interface {
	// read returns the next chunk of received bytes, valid until the next read.
	// Chunks need not align with hub messages.
	read(ctx context.Context) ([]byte, error)
	// write sends one batch of framed hub messages.
	write(ctx context.Context, b []byte) error
	// close ends the transport, gracefully (telling the server) or not; a blocked
	// read returns. It may be called more than once.
	close(graceful bool) error
}

// keepReadBuffer is the largest read buffer kept between messages.
const keepReadBuffer = 64 << 10

type wsTransport struct {
	c   *websocket.Conn
	typ websocket.MessageType
	buf bytes.Buffer
}

func (d *dialer) dialWebSocket(ctx context.Context, target, tok string) (transport, error) {
	u := target
	switch {
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + u[len("https://"):]
	}
	h := http.Header{}
	d.setHeaders(h, tok)
	ws, res, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: d.opts.HTTPClient, HTTPHeader: h})
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if res.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(res.Body, 512))
				res.Body.Close()
			}
			return nil, &HTTPError{Op: "connect", StatusCode: res.StatusCode, Body: trimBody(body)}
		}
		return nil, fmt.Errorf("client: connect: %w", err)
	}
	// One WebSocket message may hold a batch of hub messages; the decoder bounds
	// each hub message instead.
	ws.SetReadLimit(-1)
	typ := websocket.MessageText
	if d.proto.Binary() {
		typ = websocket.MessageBinary
	}
	return &wsTransport{c: ws, typ: typ}, nil
}

func (t *wsTransport) read(ctx context.Context) ([]byte, error) {
	// Whole messages: a message reader stays bound to the context it was opened
	// with, and the handshake reads under a shorter one.
	_, r, err := t.c.Reader(ctx)
	if err != nil {
		return nil, err
	}
	if t.buf.Cap() > keepReadBuffer {
		t.buf = bytes.Buffer{} // do not pin a burst's buffer for the connection's life
	}
	t.buf.Reset()
	if _, err := t.buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return t.buf.Bytes(), nil
}

func (t *wsTransport) write(ctx context.Context, b []byte) error {
	return t.c.Write(ctx, t.typ, b)
}

func (t *wsTransport) close(graceful bool) error {
	if graceful {
		return t.c.Close(websocket.StatusNormalClosure, "")
	}
	return t.c.CloseNow()
}

// httpTransport is what SSE and long polling share: sends are POSTs.
type httpTransport struct {
	d      *dialer
	url    string
	tok    string
	op     string
	cancel context.CancelFunc // ends the stream / pending poll
	once   sync.Once
}

func (t *httpTransport) request(ctx context.Context, method string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.url, r)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", t.op, err)
	}
	t.d.setHeaders(req.Header, t.tok)
	return req, nil
}

func (t *httpTransport) write(ctx context.Context, b []byte) error {
	req, err := t.request(ctx, http.MethodPost, b)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	res, err := t.d.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode != http.StatusOK {
		return &HTTPError{Op: "send", StatusCode: res.StatusCode, Body: trimBody(msg)}
	}
	return nil
}

type sseTransport struct {
	httpTransport
	body io.ReadCloser
	r    *bufio.Reader
	data []byte
}

func (d *dialer) dialSSE(ctx context.Context, target, tok string) (transport, error) {
	// The stream outlives ctx, which bounds only the connection attempt.
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	t := &sseTransport{httpTransport: httpTransport{d: d, url: target, tok: tok, op: "connect", cancel: cancel}}
	req, err := t.request(sctx, http.MethodGet, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := d.opts.HTTPClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: connect: %w", err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		res.Body.Close()
		cancel()
		return nil, &HTTPError{Op: "connect", StatusCode: res.StatusCode, Body: trimBody(msg)}
	}
	if !stop() && ctx.Err() != nil {
		res.Body.Close()
		cancel()
		return nil, fmt.Errorf("client: connect: %w", ctx.Err())
	}
	t.body, t.r = res.Body, bufio.NewReader(res.Body)
	return t, nil
}

// maxSSELine bounds one line of the event stream.
const maxSSELine = 16 << 20

// read returns the data of the next event: its data lines joined by "\n".
func (t *sseTransport) read(ctx context.Context) ([]byte, error) {
	t.data = t.data[:0]
	hasData := false
	for {
		line, err := t.readLine()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("event stream: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if hasData {
				return t.data, nil
			}
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
			if hasData {
				t.data = append(t.data, '\n')
			}
			t.data = append(t.data, v...)
			hasData = true
		}
	}
}

// readLine returns the next line, which is valid until the next call.
func (t *sseTransport) readLine() ([]byte, error) {
	var long []byte
	for {
		part, err := t.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, part...)
			if len(long) > maxSSELine {
				return nil, errors.New("event stream line too long")
			}
			continue
		}
		if long != nil {
			return append(long, part...), err
		}
		return part, err
	}
}

func (t *sseTransport) close(bool) error {
	t.once.Do(func() {
		t.cancel()
		if t.body != nil {
			t.body.Close()
		}
	})
	return nil
}

type lpTransport struct {
	httpTransport
	body []byte
}

func (d *dialer) dialLongPolling(ctx context.Context, target, tok string) (transport, error) {
	// Polls run under the read loop's context, which finish cancels.
	t := &lpTransport{httpTransport: httpTransport{d: d, url: target, tok: tok, op: "poll", cancel: func() {}}}
	// The first poll returns at once: it tells that the transport is accepted.
	if _, err := t.poll(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// errPollClosed is a 204 poll answer: the server ended the connection.
var errPollClosed = errors.New("long polling: the server ended the connection")

func (t *lpTransport) poll(ctx context.Context) ([]byte, error) {
	req, err := t.request(ctx, http.MethodGet, nil)
	if err != nil {
		return nil, err
	}
	res, err := t.d.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: poll: %w", err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return nil, errPollClosed
	default:
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return nil, &HTTPError{Op: "poll", StatusCode: res.StatusCode, Body: trimBody(msg)}
	}
	buf := bytes.NewBuffer(t.body[:0])
	if _, err := buf.ReadFrom(io.LimitReader(res.Body, maxSSELine)); err != nil {
		return nil, fmt.Errorf("client: poll: %w", err)
	}
	t.body = buf.Bytes()
	return t.body, nil
}

func (t *lpTransport) read(ctx context.Context) ([]byte, error) {
	for {
		b, err := t.poll(ctx)
		if err != nil || len(b) > 0 {
			return b, err
		}
	}
}

func (t *lpTransport) close(graceful bool) error {
	t.once.Do(func() {
		t.cancel()
		if !graceful {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := t.request(ctx, http.MethodDelete, nil)
		if err != nil {
			return
		}
		if res, err := t.d.opts.HTTPClient.Do(req); err == nil {
			res.Body.Close()
		}
	})
	return nil
}
