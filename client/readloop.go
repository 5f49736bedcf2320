package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// keepAlive runs on a timer: it pings an idle connection and enforces the server
// timeout, then schedules itself for the next deadline.
func (c *Conn) keepAlive() {
	select {
	case <-c.done:
		return
	default:
	}
	now := time.Now()
	recvDeadline := time.Unix(0, c.lastRecv.Load()).Add(c.opts.ServerTimeout)
	if !now.Before(recvDeadline) {
		c.finish(ErrServerTimeout, false)
		return
	}
	sendDeadline := time.Unix(0, c.lastSend.Load()).Add(c.opts.KeepAliveInterval)
	if !now.Before(sendDeadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.writeMessage(ctx, protocol.Ping{})
		cancel()
		if err != nil && !errors.Is(err, ErrClosed) {
			c.finish(fmt.Errorf("client: ping: %w", err), false)
			return
		}
		sendDeadline = time.Now().Add(c.opts.KeepAliveInterval)
	}
	next := min(sendDeadline.Sub(now), recvDeadline.Sub(now))
	c.timer.Reset(max(next, 10*time.Millisecond))
}

func (c *Conn) readLoop(ctx context.Context, dec *protocol.Decoder) {
	defer close(c.readDone)
	defer close(c.msgs)
	if err := c.dispatchAll(ctx, dec); err != nil {
		c.finish(err, false)
		return
	}
	for {
		b, err := c.t.read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.finish(fmt.Errorf("client: transport: %w", err), false)
			}
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		dec.Write(b)
		if err := c.dispatchAll(ctx, dec); err != nil {
			c.finish(err, false)
			return
		}
	}
}

// errServerClosed ends dispatching when the server sent a Close without error.
var errServerClosed = errors.New("client: server closed the connection")

func (c *Conn) dispatchAll(ctx context.Context, dec *protocol.Decoder) error {
	for {
		m, err := dec.Next()
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		if m == nil {
			return nil
		}
		if err := c.dispatch(ctx, m); err != nil {
			if errors.Is(err, errServerClosed) {
				c.finish(nil, false)
				return nil
			}
			return err
		}
	}
}

func (c *Conn) dispatch(ctx context.Context, m protocol.Message) error {
	switch m := m.(type) {
	case *protocol.Invocation:
		c.handlersMu.RLock()
		hs := c.handlers[strings.ToLower(m.Target)]
		c.handlersMu.RUnlock()
		if m.InvocationID != "" {
			// The server expects a client result, which this client does not offer.
			go func() {
				wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = c.writeMessage(wctx, &protocol.Completion{InvocationID: m.InvocationID, Error: "Client didn't provide a result."})
			}()
		}
		for _, h := range hs {
			h(m.Arguments)
		}
		if len(hs) == 0 {
			if !c.msgsWanted.Load() {
				c.log.Debug("no handler for invocation", slog.String("target", m.Target))
				return nil
			}
			select {
			case c.msgs <- m:
			case <-ctx.Done():
			}
		}
	case *protocol.Completion:
		// Under the lock: finish closes the channels of the calls it takes away.
		c.mu.Lock()
		if p, ok := c.pending[m.InvocationID]; ok {
			select {
			case p.ch <- m:
			default: // a duplicate completion
			}
		}
		c.mu.Unlock()
	case *protocol.Close:
		if m.Error != "" {
			return &CloseError{Message: m.Error, AllowReconnect: m.AllowReconnect}
		}
		return errServerClosed
	}
	return nil
}
