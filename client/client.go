package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// Transport is how the connection carries hub messages.
type Transport int

// The transports, in the order the JavaScript client prefers them.
const (
	WebSockets Transport = iota
	ServerSentEvents
	LongPolling
)

// String returns the transport's name in negotiate responses.
func (t Transport) String() string {
	switch t {
	case WebSockets:
		return "WebSockets"
	case ServerSentEvents:
		return "ServerSentEvents"
	case LongPolling:
		return "LongPolling"
	}
	return "Transport(" + strconv.Itoa(int(t)) + ")"
}

// Options configures Dial. The zero value (and nil) means WebSockets, JSON,
// http.DefaultClient and no access token.
type Options struct {
	// AccessToken, if set, returns the bearer token of the first negotiate request
	// (and of the connection when negotiate does not redirect with its own token).
	AccessToken func(ctx context.Context) (string, error)
	Transport   Transport
	Protocol    protocol.Protocol // nil = protocol.JSON()
	// HTTPClient makes every request (nil = http.DefaultClient). Its Timeout
	// bounds the WebSocket handshake only; leave it 0 for ServerSentEvents and
	// LongPolling, whose requests last as long as the connection or a poll.
	HTTPClient *http.Client
	Header     http.Header  // extra request headers (negotiate and transport)
	Logger     *slog.Logger // nil = discard

	// SkipNegotiation connects the WebSocket directly to the URL (which must then
	// be the service's client URL); only for WebSockets.
	SkipNegotiation bool

	KeepAliveInterval time.Duration // ping after this long without sending; default 15 s
	ServerTimeout     time.Duration // close after this long without receiving; default 30 s
	HandshakeTimeout  time.Duration // default 15 s
	MaxMessageSize    int           // largest message received; default 1 MiB
	MessageBuffer     int           // capacity of the Messages channel; default 256
}

var (
	// ErrClosed is returned by calls on a connection that has ended.
	ErrClosed = errors.New("client: connection closed")
	// ErrServerTimeout ends a connection that heard nothing from the server for
	// Options.ServerTimeout.
	ErrServerTimeout = errors.New("client: server timeout elapsed without receiving a message")
)

// writeTimeout bounds one send on the transport; a connection that cannot take a
// frame for this long is broken.
const writeTimeout = 15 * time.Second

// InvocationError is the error of a Completion.
type InvocationError struct {
	Target  string
	Message string
}

func (e *InvocationError) Error() string {
	return fmt.Sprintf("client: invocation of %q failed: %s", e.Target, e.Message)
}

// CloseError is a Close message with an error from the server.
type CloseError struct {
	Message        string
	AllowReconnect bool
}

func (e *CloseError) Error() string { return "client: server closed the connection: " + e.Message }

// Conn is one SignalR connection. Its methods are safe for concurrent use.
type Conn struct {
	id    string
	proto protocol.Protocol
	t     transport
	log   *slog.Logger
	opts  Options

	cancel   context.CancelFunc // ends the read loop's context
	done     chan struct{}
	readDone chan struct{}
	timer    *time.Timer

	handlersMu sync.RWMutex
	handlers   map[string][]func(args []protocol.Value) // by lower-cased target

	msgs       chan *protocol.Invocation
	msgsWanted atomic.Bool

	writeSem chan struct{} // one send at a time: ordering, and HTTP transports allow one POST
	lastSend atomic.Int64
	lastRecv atomic.Int64

	mu      sync.Mutex
	nextID  uint64
	pending map[string]pendingCall
	ended   bool
	err     error
}

type pendingCall struct {
	target string
	ch     chan *protocol.Completion
}

// dialer holds what Dial needs before a Conn exists.
type dialer struct {
	opts  Options
	proto protocol.Protocol
}

func (d *dialer) token(ctx context.Context) (string, error) {
	if d.opts.AccessToken == nil {
		return "", nil
	}
	tok, err := d.opts.AccessToken(ctx)
	if err != nil {
		return "", fmt.Errorf("client: access token: %w", err)
	}
	return tok, nil
}

func (d *dialer) setHeaders(h http.Header, tok string) {
	for k, vs := range d.opts.Header {
		h[k] = append([]string(nil), vs...)
	}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
}

// Dial negotiates with url (a hub URL such as http://host/client/?hub=chat, or an
// app's negotiate base such as http://app/api), connects the transport and
// completes the handshake. ctx bounds the whole connection attempt only.
func Dial(ctx context.Context, url string, opts *Options) (*Conn, error) {
	d := &dialer{}
	if opts != nil {
		d.opts = *opts
	}
	o := &d.opts
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Protocol == nil {
		o.Protocol = protocol.JSON()
	}
	d.proto = o.Protocol
	if o.KeepAliveInterval <= 0 {
		o.KeepAliveInterval = 15 * time.Second
	}
	if o.ServerTimeout <= 0 {
		o.ServerTimeout = 30 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 15 * time.Second
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 1 << 20
	}
	if o.MessageBuffer <= 0 {
		o.MessageBuffer = 256
	}
	switch o.Transport {
	case WebSockets:
	case ServerSentEvents:
		if d.proto.Binary() {
			return nil, errors.New("client: ServerSentEvents carries text only: use the JSON protocol")
		}
		if o.SkipNegotiation {
			return nil, errors.New("client: SkipNegotiation works with WebSockets only")
		}
	case LongPolling:
		if o.SkipNegotiation {
			return nil, errors.New("client: SkipNegotiation works with WebSockets only")
		}
	default:
		return nil, fmt.Errorf("client: unknown transport %d", int(o.Transport))
	}

	var neg *negotiation
	if o.SkipNegotiation {
		tok, err := d.token(ctx)
		if err != nil {
			return nil, err
		}
		neg = &negotiation{url: url, accessToken: tok}
	} else {
		var err error
		if neg, err = d.negotiate(ctx, url); err != nil {
			return nil, err
		}
	}
	target := connectURL(neg.url, neg.token)
	var (
		t   transport
		err error
	)
	switch o.Transport {
	case WebSockets:
		t, err = d.dialWebSocket(ctx, target, neg.accessToken)
	case ServerSentEvents:
		t, err = d.dialSSE(ctx, target, neg.accessToken)
	default:
		t, err = d.dialLongPolling(ctx, target, neg.accessToken)
	}
	if err != nil {
		return nil, err
	}
	c := &Conn{
		id:       neg.connectionID,
		proto:    d.proto,
		t:        t,
		log:      o.Logger,
		opts:     *o,
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
		handlers: make(map[string][]func([]protocol.Value)),
		msgs:     make(chan *protocol.Invocation, o.MessageBuffer),
		writeSem: make(chan struct{}, 1),
		pending:  make(map[string]pendingCall),
	}
	dec, err := c.handshake(ctx)
	if err != nil {
		_ = t.close(false)
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	now := time.Now().UnixNano()
	c.lastRecv.Store(now)
	c.lastSend.Store(now)
	// Armed only once assigned: keepAlive reads c.timer.
	c.timer = time.AfterFunc(time.Duration(math.MaxInt64), c.keepAlive)
	c.timer.Reset(min(o.KeepAliveInterval, o.ServerTimeout))
	go c.readLoop(rctx, dec)
	c.log.Debug("signalr connection started", slog.String("connectionId", c.id),
		slog.String("transport", o.Transport.String()), slog.String("protocol", d.proto.Name()))
	return c, nil
}

// handshake sends the handshake request and reads the response; the decoder it
// returns holds whatever followed the response.
func (c *Conn) handshake(ctx context.Context) (*protocol.Decoder, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.HandshakeTimeout)
	defer cancel()
	req := protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: c.proto.Name(), Version: 1})
	if err := c.t.write(ctx, req); err != nil {
		return nil, fmt.Errorf("client: handshake: %w", err)
	}
	var buf []byte
	for {
		b, err := c.t.read(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: handshake: %w", err)
		}
		buf = append(buf, b...)
		errText, rest, err := protocol.ParseHandshakeResponse(buf)
		switch {
		case errors.Is(err, protocol.ErrIncomplete):
			if len(buf) > c.opts.MaxMessageSize {
				return nil, errors.New("client: handshake: response too large")
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("client: handshake: %w", err)
		case errText != "":
			return nil, fmt.Errorf("client: handshake rejected: %s", errText)
		}
		dec := protocol.NewDecoder(c.proto, c.opts.MaxMessageSize)
		dec.Write(rest)
		return dec, nil
	}
}

// ID returns the connection id the server assigned ("" when negotiation was skipped).
func (c *Conn) ID() string { return c.id }

// Protocol returns the hub protocol of the connection.
func (c *Conn) Protocol() protocol.Protocol { return c.proto }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: nil while it runs, after Close and when
// the server closed it without an error; a *CloseError when the server closed it
// with one; ErrServerTimeout; else a transport or protocol error.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// On registers fn for invocations of target (matched case-insensitively). Handlers
// run one at a time on the connection's read goroutine, in arrival order; a handler
// that blocks delays every later message, pings included.
func (c *Conn) On(target string, fn func(args []protocol.Value)) {
	k := strings.ToLower(target)
	c.handlersMu.Lock()
	c.handlers[k] = append(c.handlers[k], fn)
	c.handlersMu.Unlock()
}

// Off removes every handler of target.
func (c *Conn) Off(target string) {
	c.handlersMu.Lock()
	delete(c.handlers, strings.ToLower(target))
	c.handlersMu.Unlock()
}

// Messages returns the invocations no handler was registered for. The channel is
// closed when the connection ends. Once Messages has been called the caller must
// keep receiving: the read loop waits for room in the channel. Before the first
// call such invocations are dropped.
func (c *Conn) Messages() <-chan *protocol.Invocation {
	c.msgsWanted.Store(true)
	return c.msgs
}

// Send invokes target on the server without waiting for a result. args are
// protocol.Value values or anything encoding/json can marshal. ctx bounds the
// wait for earlier sends; once the message is being written it is written whole
// (within 15 s), so cancelling never leaves the connection broken.
func (c *Conn) Send(ctx context.Context, target string, args ...any) error {
	inv, err := invocation(target, args)
	if err != nil {
		return err
	}
	return c.writeMessage(ctx, inv)
}

// Invoke calls the hub method target and waits for its Completion: the result
// (zero Value for a void method), or an *InvocationError.
func (c *Conn) Invoke(ctx context.Context, target string, args ...any) (protocol.Value, error) {
	inv, err := invocation(target, args)
	if err != nil {
		return protocol.Value{}, err
	}
	ch := make(chan *protocol.Completion, 1)
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return protocol.Value{}, ErrClosed
	}
	c.nextID++
	inv.InvocationID = strconv.FormatUint(c.nextID, 10)
	c.pending[inv.InvocationID] = pendingCall{target: target, ch: ch}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, inv.InvocationID)
		c.mu.Unlock()
	}()
	if err := c.writeMessage(ctx, inv); err != nil {
		return protocol.Value{}, err
	}
	select {
	case comp, ok := <-ch:
		if !ok {
			return protocol.Value{}, c.endErr()
		}
		if comp.Error != "" {
			return protocol.Value{}, &InvocationError{Target: target, Message: comp.Error}
		}
		return comp.Result, nil
	case <-ctx.Done():
		return protocol.Value{}, fmt.Errorf("client: invoke %q: %w", target, ctx.Err())
	}
}

func invocation(target string, args []any) (*protocol.Invocation, error) {
	inv := &protocol.Invocation{Target: target, Arguments: make([]protocol.Value, len(args))}
	for i, a := range args {
		if v, ok := a.(protocol.Value); ok {
			inv.Arguments[i] = v
			continue
		}
		v, err := protocol.ValueOf(a)
		if err != nil {
			return nil, fmt.Errorf("client: argument %d of %q: %w", i, target, err)
		}
		inv.Arguments[i] = v
	}
	return inv, nil
}

func (c *Conn) writeMessage(ctx context.Context, m protocol.Message) error {
	frame, err := c.proto.AppendFrame(nil, m)
	if err != nil {
		return fmt.Errorf("client: encode: %w", err)
	}
	select {
	case <-c.done:
		return c.endErr()
	default:
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	select {
	case c.writeSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("client: send: %w", ctx.Err())
	case <-c.done:
		return c.endErr()
	}
	defer func() { <-c.writeSem }()
	// ctx bounds only the wait for this send's turn: a frame cannot be taken back
	// half written, and coder/websocket closes the connection when the context of a
	// write ends mid-frame. The write itself has its own deadline.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if err := c.t.write(wctx, frame); err != nil {
		select {
		case <-c.done:
			return c.endErr()
		default:
		}
		return fmt.Errorf("client: send: %w", err)
	}
	c.lastSend.Store(time.Now().UnixNano())
	return nil
}

// endErr is what calls on an ended connection return.
func (c *Conn) endErr() error {
	if err := c.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return ErrClosed
}

// Close ends the connection and waits for its read loop to stop.
func (c *Conn) Close() error {
	c.finish(nil, true)
	<-c.readDone
	return nil
}

// finish ends the connection once, recording err as the reason.
func (c *Conn) finish(err error, graceful bool) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	c.err = err
	pending := c.pending
	c.pending = map[string]pendingCall{}
	c.mu.Unlock()
	c.timer.Stop()
	for _, p := range pending {
		close(p.ch)
	}
	close(c.done)
	if graceful {
		// Let the peer see an orderly end before the read loop is cancelled.
		_ = c.t.close(true)
	}
	c.cancel()
	_ = c.t.close(false)
	if err != nil {
		c.log.Debug("signalr connection ended", slog.String("connectionId", c.id), slog.Any("error", err))
	}
}
