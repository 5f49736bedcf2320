package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/client"
	"github.com/signalbox-io/signalbox/protocol"
)

// fleet is the connected clients of a scenario: client.Conns, or raw clients
// (connectRaw).
type fleet struct {
	conns    []*client.Conn // nil where the connection failed
	raw      []*rawClient   // the same, of connectRaw
	stopPing context.CancelFunc
	users    []string
	failed   int64
	connect  *Histogram
	elapsed  time.Duration // to connect them all
	lastErr  error
}

// user is the name of client i of the env: "u<i>", counted from e.firstUser.
func (e *env) user(i int) string { return "u" + strconv.Itoa(e.firstUser+i) }

// connectAll connects n WebSocket clients, user "u<i>" each, with
// o.ConnectConcurrency dialers. setup runs for each connection before it counts
// as connected (register handlers there).
func connectAll(ctx context.Context, e *env, n int, setup func(i int, c *client.Conn)) (*fleet, error) {
	f := &fleet{conns: make([]*client.Conn, n)}
	err := f.dialAll(ctx, e, n, func(ctx context.Context, i int, hubURL, tok string) error {
		c, err := client.Dial(ctx, hubURL, &client.Options{
			AccessToken: func(context.Context) (string, error) { return tok, nil },
			Protocol:    e.proto,
			Transport:   e.transport(),
			HTTPClient:  e.hc,
		})
		if err != nil {
			return err
		}
		if setup != nil {
			setup(i, c)
		}
		f.conns[i] = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// connectRaw connects n raw WebSocket clients (see rawClient; the caller checked
// e.rawOK) with dial, user "u<i>" each, and starts read(i, c) as client i's read
// loop (readLoop, or readRecords with a sink of the caller's).
func connectRaw(ctx context.Context, e *env, n int, read func(i int, c *rawClient), dial rawDial) (*fleet, error) {
	f := &fleet{raw: make([]*rawClient, n)}
	err := f.dialAll(ctx, e, n, func(ctx context.Context, i int, hubURL, tok string) error {
		c, err := dial(ctx, hubURL, tok, e.user(i))
		if err != nil {
			return err
		}
		go read(i, c)
		f.raw[i] = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	f.stopPing = cancel
	go pingRaw(pctx, f.raw)
	return f, nil
}

// rawDial connects one raw client: dialRaw, or rawConnector.connect.
type rawDial func(ctx context.Context, hubURL, token, user string) (*rawClient, error)

// dialAll connects n clients with dial, o.ConnectConcurrency at a time, and times
// them. dial stores the connection in f before it returns nil.
func (f *fleet) dialAll(ctx context.Context, e *env, n int, dial func(ctx context.Context, i int, hubURL, tok string) error) error {
	f.users, f.connect = make([]string, n), &Histogram{}
	endpoints := e.endpoints
	if len(endpoints) == 0 {
		endpoints = []string{e.endpoint}
	}
	// The whole phase is bounded, and it stops early when most dials fail (a
	// server that does not answer would otherwise cost 30 s per batch of dialers).
	parent := ctx
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute+time.Duration(n)*2*time.Millisecond)
	defer cancelTimeout()
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	// The tokens are signed before the clock starts: a real client gets its token
	// from its application, not from the machine it connects from, and presents the
	// same one again when it reconnects (the storm).
	tokens := make([]string, n)
	for i := range n {
		ep := endpoints[i%len(endpoints)]
		tok, err := e.tokens.get(e.key, auth.ClientAudience(ep, e.o.Hub), e.user(i))
		if err != nil {
			return err
		}
		tokens[i] = tok
	}
	var connected int64
	jobs := make(chan int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < min(e.o.ConnectConcurrency, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				f.users[i] = e.user(i)
				// Spread over the nodes of a cluster, one in turn.
				ep := endpoints[i%len(endpoints)]
				t0 := time.Now()
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := dial(dctx, i, auth.ClientURL(ep, e.o.Hub), tokens[i])
				cancel()
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					f.failed++
					f.lastErr = err
					if f.failed >= 64 && f.failed > connected {
						abort(fmt.Errorf("%d of %d connection attempts failed: %w", f.failed, f.failed+connected, err))
					}
				} else {
					connected++
					f.connect.Record(d)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	f.elapsed = time.Since(start)
	if ctx.Err() != nil {
		f.close()
		if err := parent.Err(); err != nil {
			return fmt.Errorf("bench: connecting: %w", err)
		}
		return fmt.Errorf("bench: connecting: %w", context.Cause(ctx))
	}
	if f.failed == int64(n) {
		f.close()
		return fmt.Errorf("bench: no client could connect: %w", f.lastErr)
	}
	if f.failed > 0 {
		e.o.Logger.Warn("some clients failed to connect", slog.Int64("failed", f.failed), slog.Any("lastError", f.lastErr))
	}
	e.o.Logger.Info("clients connected", slog.Int("clients", n-int(f.failed)), slog.Duration("took", f.elapsed))
	return nil
}

func (e *env) transport() client.Transport {
	switch e.o.Transport {
	case "sse":
		return client.ServerSentEvents
	case "longpolling":
		return client.LongPolling
	}
	return client.WebSockets
}

// clientTokens are the client tokens of the bench's users, signed once per audience
// and user and shared by the env's copies (the storm's).
type clientTokens struct{ m sync.Map }

// clientTokenLifetime outlasts any run.
const clientTokenLifetime = 2 * time.Hour

func (t *clientTokens) get(key, aud, user string) (string, error) {
	k := aud + "\x00" + user
	if tok, ok := t.m.Load(k); ok {
		return tok.(string), nil
	}
	tok, err := auth.NewToken(key, auth.TokenOptions{Audience: aud, UserID: user, Lifetime: clientTokenLifetime})
	if err != nil {
		return "", fmt.Errorf("bench: signing a client token: %w", err)
	}
	t.m.Store(k, tok)
	return tok, nil
}

// connected returns the number of connected clients.
func (f *fleet) connected() int { return len(f.users) - int(f.failed) }

// live reports whether client i connected.
func (f *fleet) live(i int) bool {
	if f.raw != nil {
		return f.raw[i] != nil
	}
	return f.conns[i] != nil
}

// benchConn is what the fleet needs of a connection.
type benchConn interface {
	Done() <-chan struct{}
	Err() error
	ID() string
	Close() error
}

// all returns the connected clients.
func (f *fleet) all() []benchConn {
	out := make([]benchConn, 0, len(f.users))
	for _, c := range f.conns {
		if c != nil {
			out = append(out, c)
		}
	}
	for _, c := range f.raw {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// disconnected counts the connections that ended by themselves and logs the
// reason of the first.
func (f *fleet) disconnected(log *slog.Logger) int64 {
	var n int64
	for _, c := range f.all() {
		select {
		case <-c.Done():
			if n == 0 {
				log.Warn("a client was disconnected", slog.String("connectionId", c.ID()), slog.Any("reason", c.Err()))
			}
			n++
		default:
		}
	}
	return n
}

// close closes every connection, 64 at a time.
func (f *fleet) close() {
	if f.stopPing != nil {
		f.stopPing()
	}
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, c := range f.all() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			_ = c.Close()
			<-sem
		}()
	}
	wg.Wait()
}

func (f *fleet) fill(r *Result) { f.phase().fill(r, f.elapsed) }

// phase returns the connect figures of f.
func (f *fleet) phase() *connectPhase {
	p := &connectPhase{connected: f.connected(), failed: f.failed, connect: f.connect}
	if f.lastErr != nil {
		p.lastErr = f.lastErr.Error()
	}
	return p
}

// int64Arg reads an integer argument in either protocol without going through
// encoding/json.
func int64Arg(v protocol.Value) (int64, error) {
	if v.IsMessagePack() {
		b, err := v.MessagePack()
		if err != nil {
			return 0, err
		}
		n, _, err := msgp.ReadInt64Bytes(b)
		return n, err
	}
	b, err := v.JSON()
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// errBadArgs counts messages the bench cannot read.
var errBadArgs = errors.New("bench: unexpected message arguments")

// stamp reads the (send time, sequence) arguments of a bench message.
func stamp(args []protocol.Value) (sent time.Time, seq int64, err error) {
	if len(args) < 2 {
		return time.Time{}, 0, errBadArgs
	}
	ns, err := int64Arg(args[0])
	if err != nil {
		return time.Time{}, 0, err
	}
	seq, err = int64Arg(args[1])
	if err != nil {
		return time.Time{}, 0, err
	}
	return time.Unix(0, ns), seq, nil
}

// counter is an int64 on its own cache line.
type counter struct {
	atomic.Int64
	_ [56]byte
}
