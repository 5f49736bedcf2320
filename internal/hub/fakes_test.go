package hub

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// fakeProto frames a message as "<name>:<target>" and counts encodings, so tests
// see which protocol a recipient got and how often a payload was encoded.
type fakeProto struct {
	name    string
	encodes atomic.Int64
	fail    bool
}

func (p *fakeProto) Name() string { return p.name }
func (p *fakeProto) Version() int { return 2 }
func (p *fakeProto) Binary() bool { return p.name != "json" }
func (p *fakeProto) AppendFrame(dst []byte, m protocol.Message) ([]byte, error) {
	p.encodes.Add(1)
	if p.fail {
		return nil, errors.New("boom")
	}
	inv, ok := m.(*protocol.Invocation)
	if !ok {
		return nil, fmt.Errorf("unexpected %T", m)
	}
	return append(dst, p.name+":"+inv.Target...), nil
}
func (p *fakeProto) AppendUnframed(dst []byte, m protocol.Message) ([]byte, error) {
	return p.AppendFrame(dst, m)
}
func (p *fakeProto) ParseUnframed([]byte) (protocol.Message, error) { return nil, errors.New("no") }

type fakeClient struct {
	id, hub, user string
	proto         protocol.Protocol
	onSend        func() // called inside Send, to prove no lock is held

	mu          sync.Mutex
	frames      []string
	closed      bool
	closeReason string
}

func newFake(hub, id, user string, p protocol.Protocol) *fakeClient {
	return &fakeClient{id: id, hub: hub, user: user, proto: p}
}

func (c *fakeClient) ID() string                  { return c.id }
func (c *fakeClient) Hub() string                 { return c.hub }
func (c *fakeClient) UserID() string              { return c.user }
func (c *fakeClient) Protocol() protocol.Protocol { return c.proto }
func (c *fakeClient) Send(frame []byte) bool {
	if c.onSend != nil {
		c.onSend()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, string(frame))
	return true
}
func (c *fakeClient) Close(reason string, _ bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed, c.closeReason = true, reason
}

func (c *fakeClient) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.frames...)
}

func (c *fakeClient) isClosed() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.closeReason
}

func msg(target string) *Payload { return NewPayload(&protocol.Invocation{Target: target}) }

func dur(d time.Duration) *time.Duration { return &d }
