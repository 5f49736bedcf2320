package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/internal/odata"
	"github.com/signalbox-io/signalbox/internal/restapi"
	"github.com/signalbox-io/signalbox/protocol"
)

// maxStreamsPerConn bounds the server-to-client streams one connection may have open.
const maxStreamsPerConn = 64

// clientCalls implements restapi.ClientCalls and restapi.ConnectionLister for this
// node's connections: client results (:invoke) wait in a table bounded in number
// (max-pending-invocations) and time (invoke-timeout).
type clientCalls struct {
	s   *Server
	seq atomic.Uint64

	mu      sync.Mutex
	pending map[string]*pendingCall // by invocation id
}

type pendingCall struct {
	connID string
	done   chan *protocol.Completion // buffered, 1
}

func newClientCalls(s *Server) *clientCalls {
	return &clientCalls{s: s, pending: make(map[string]*pendingCall)}
}

// local returns the node's connection id of hub, if it is here and past its handshake.
func (cc *clientCalls) local(hubName, connID string) (*conn, bool) {
	cl, ok := cc.s.registry.Connection(hubName, connID)
	if !ok {
		return nil, false
	}
	c, ok := cl.(*conn)
	return c, ok
}

// Invoke implements restapi.ClientCalls.
func (cc *clientCalls) Invoke(ctx context.Context, hubName, connID string, inv *protocol.Invocation) (*protocol.Completion, error) {
	c, ok := cc.local(hubName, connID)
	if !ok {
		return nil, restapi.ErrNoConnection
	}
	// The id is unique in this process and tells the client's answers apart from the
	// ids of its own invocations, which it numbers from 0.
	id := "s" + strconv.FormatUint(cc.seq.Add(1), 10)
	p := &pendingCall{connID: connID, done: make(chan *protocol.Completion, 1)}
	cc.mu.Lock()
	if len(cc.pending) >= cc.s.cfg.MaxPendingInvocations {
		cc.mu.Unlock()
		return nil, restapi.ErrTooManyInvocations
	}
	cc.pending[id] = p
	cc.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		delete(cc.pending, id)
		cc.mu.Unlock()
	}()

	msg := *inv
	msg.InvocationID = id
	frame, err := c.proto.AppendFrame(nil, &msg)
	if err != nil {
		return nil, fmt.Errorf("server: encoding the invocation for %s: %w", c.proto.Name(), err)
	}
	if !c.Send(frame) {
		return nil, restapi.ErrNoConnection
	}
	timer := time.NewTimer(cc.s.cfg.InvokeTimeout)
	defer timer.Stop()
	select {
	case comp := <-p.done:
		return comp, nil
	case <-c.stopChan():
		return nil, fmt.Errorf("%w: it closed before answering", restapi.ErrNoConnection)
	case <-timer.C:
		return nil, restapi.ErrInvocationTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// complete hands a client's Completion to the :invoke waiting for it. It reports
// false when none waits (a late answer, or a Completion of something else).
func (cc *clientCalls) complete(connID string, m *protocol.Completion) bool {
	cc.mu.Lock()
	p := cc.pending[m.InvocationID]
	if p == nil || p.connID != connID {
		cc.mu.Unlock()
		return false
	}
	delete(cc.pending, m.InvocationID)
	cc.mu.Unlock()
	p.done <- m // decoded messages do not share the decoder's buffer
	return true
}

// StreamItem implements restapi.ClientCalls.
func (cc *clientCalls) StreamItem(_ context.Context, hubName, connID, streamID string, item protocol.Value, complete bool) error {
	c, ok := cc.local(hubName, connID)
	if !ok {
		return restapi.ErrNoConnection
	}
	frame, err := c.proto.AppendFrame(nil, &protocol.StreamItem{InvocationID: streamID, Item: item})
	if err != nil {
		return fmt.Errorf("server: encoding a stream item for %s: %w", c.proto.Name(), err)
	}
	if complete {
		end, err := c.proto.AppendFrame(nil, &protocol.Completion{InvocationID: streamID})
		if err != nil {
			return fmt.Errorf("server: encoding a completion: %w", err)
		}
		frame = append(frame, end...)
	}
	return c.streamSend(streamID, frame, complete)
}

// CompleteStream implements restapi.ClientCalls.
func (cc *clientCalls) CompleteStream(_ context.Context, hubName, connID, streamID, errText string) error {
	c, ok := cc.local(hubName, connID)
	if !ok {
		return restapi.ErrNoConnection
	}
	frame, err := c.proto.AppendFrame(nil, &protocol.Completion{InvocationID: streamID, Error: errText})
	if err != nil {
		return fmt.Errorf("server: encoding a completion: %w", err)
	}
	return c.streamSend(streamID, frame, true)
}

// HubConnections implements restapi.ConnectionLister.
func (cc *clientCalls) HubConnections(_ context.Context, hubName string) ([]odata.Connection, error) {
	states := cc.s.registry.Connections(hubName)
	out := make([]odata.Connection, len(states))
	for i := range states {
		st := &states[i]
		out[i] = odata.Connection{ID: st.ConnectionID, UserID: st.UserID, InGroup: func(g string) bool { return st.Groups[g] }}
	}
	return out, nil
}

// openStream records a stream the client started (a StreamInvocation); false when the
// connection has too many open.
func (c *conn) openStream(id string) bool {
	if c.up == nil {
		return false // streams need an upstream; handle does not get here without one
	}
	c.up.streamMu.Lock()
	defer c.up.streamMu.Unlock()
	if c.up.streams == nil {
		c.up.streams = make(map[string]bool)
	}
	if len(c.up.streams) >= maxStreamsPerConn && !c.up.streams[id] {
		return false
	}
	c.up.streams[id] = true
	return true
}

// closeStream forgets a stream; it reports whether it was open.
func (c *conn) closeStream(id string) bool {
	if c.up == nil {
		return false
	}
	c.up.streamMu.Lock()
	defer c.up.streamMu.Unlock()
	open := c.up.streams[id]
	delete(c.up.streams, id)
	return open
}

// streamSend sends frame on open stream id; last closes the stream. Checking and
// sending under c.up.streamMu keeps the items of concurrent REST calls from passing the
// completion.
func (c *conn) streamSend(id string, frame []byte, last bool) error {
	if c.up == nil {
		return restapi.ErrNoStream
	}
	c.up.streamMu.Lock()
	defer c.up.streamMu.Unlock()
	if !c.up.streams[id] {
		return restapi.ErrNoStream
	}
	if last {
		delete(c.up.streams, id)
	}
	if !c.Send(frame) {
		return restapi.ErrNoConnection
	}
	return nil
}

// streamReply filters what the function app answered to a stream invocation: its
// result is not a stream item, so a successful Completion is dropped (the stream stays
// open for REST :send); an error ends the stream. It reports whether frame was
// consumed.
func (c *conn) streamReply(frame []byte) bool {
	if c.up == nil {
		return false
	}
	c.up.streamMu.Lock()
	n := len(c.up.streams)
	c.up.streamMu.Unlock()
	if n == 0 {
		return false
	}
	m, err := parseFrame(c.proto, frame)
	if err != nil {
		return false
	}
	comp, ok := m.(*protocol.Completion)
	if !ok {
		return false
	}
	c.up.streamMu.Lock()
	open := c.up.streams[comp.InvocationID]
	if open && comp.Error != "" {
		delete(c.up.streams, comp.InvocationID)
	}
	c.up.streamMu.Unlock()
	return open && comp.Error == ""
}

// parseFrame parses one framed message of p.
func parseFrame(p protocol.Protocol, frame []byte) (protocol.Message, error) {
	d := protocol.NewDecoder(p, 0)
	d.Write(frame)
	return d.Next()
}

// forwardClientCall sends a client-result or stream operation for a connection that
// another node of the cluster holds to that node, which has its transport and will
// receive its answer. It reports false when the request is for this node (or for
// nobody, or the owner is unknown): the REST API then answers it here.
func (s *Server) forwardClientCall(w http.ResponseWriter, r *http.Request) bool {
	if !s.node.Clustered() || r.Header.Get(forwardedHeader) != "" {
		return false
	}
	hubName, connID, ok := restapi.ClientCallTarget(r)
	if !ok {
		return false
	}
	if _, local := s.registry.Connection(hubName, connID); local {
		return false
	}
	node, exists, err := s.node.ConnectionOwner(r.Context(), hubName, connID)
	if err != nil || !exists || node == s.node.ID() {
		return false
	}
	return s.forwardTo(w, r, node)
}
