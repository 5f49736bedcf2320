package hub

import (
	"errors"
	"fmt"
	"sync"

	"github.com/signalbox-io/signalbox/protocol"
)

// ErrNoFrame is returned by Payload.Frame when a payload built from pre-framed
// bytes has no frame for the requested protocol.
var ErrNoFrame = errors.New("hub: payload has no frame for protocol")

// Payload is one outbound message with its frames cached per protocol name.
// It is safe for concurrent use; frames returned by Frame are shared by every
// recipient and must not be modified.
type Payload struct {
	msg protocol.Message // nil for payloads built from frames
	bg  *Background      // nil: fan-outs write before they return

	mu sync.Mutex
	// The frames by protocol name: the first two in place (a message rarely goes
	// out in more than JSON and MessagePack; a map cost two allocations per
	// payload), any further ones in more.
	names  [2]string
	frames [2]frameResult
	n      int
	more   map[string]frameResult
}

// lookup returns the frame of name; p.mu is held.
func (p *Payload) lookup(name string) (frameResult, bool) {
	for i := range p.n {
		if p.names[i] == name {
			return p.frames[i], true
		}
	}
	fr, ok := p.more[name]
	return fr, ok
}

// store keeps the frame of name; p.mu is held.
func (p *Payload) store(name string, fr frameResult) {
	if p.n < len(p.names) {
		p.names[p.n], p.frames[p.n] = name, fr
		p.n++
		return
	}
	if p.more == nil {
		p.more = make(map[string]frameResult)
	}
	p.more[name] = fr
}

type frameResult struct {
	frame []byte
	err   error
}

// NewPayload returns a payload that encodes m lazily, once per protocol.
func NewPayload(m protocol.Message) *Payload {
	return &Payload{msg: m}
}

// PayloadFromFrames returns a payload serving the given pre-framed bytes keyed by
// protocol name ("json", "messagepack"). Protocols without a frame get ErrNoFrame.
// The map and the byte slices must not be modified afterwards.
func PayloadFromFrames(frames map[string][]byte) *Payload {
	p := &Payload{}
	for name, f := range frames {
		p.store(name, frameResult{frame: f})
	}
	return p
}

// Message returns the message the payload was built from, or nil when it was
// built from pre-framed bytes.
func (p *Payload) Message() protocol.Message { return p.msg }

// Frame returns the framed bytes of the message in proto, encoding them on first use.
func (p *Payload) Frame(proto protocol.Protocol) ([]byte, error) {
	if proto == nil {
		return nil, fmt.Errorf("%w: nil protocol", ErrNoFrame)
	}
	name := proto.Name()
	p.mu.Lock()
	defer p.mu.Unlock()
	if fr, ok := p.lookup(name); ok {
		return fr.frame, fr.err
	}
	if p.msg == nil {
		return nil, fmt.Errorf("%w %q", ErrNoFrame, name)
	}
	frame, err := proto.AppendFrame(make([]byte, 0, frameSizeHint(p.msg)), p.msg)
	if err != nil {
		err = fmt.Errorf("hub: encode %s frame: %w", name, err)
		frame = nil
	}
	p.store(name, frameResult{frame: frame, err: err})
	return frame, err
}

// frameSizeHint is about the size of m's frame, so that encoding it takes one
// allocation instead of a chain of growing ones: the JSON arguments' length plus room
// for the rest of an invocation; other messages get a small default.
func frameSizeHint(m protocol.Message) int {
	const rest = 64
	inv, ok := m.(*protocol.Invocation)
	if !ok {
		return rest
	}
	n := rest + len(inv.Target) + len(inv.InvocationID)
	for _, a := range inv.Arguments {
		if a.IsMessagePack() {
			n += 16 // not converted here just to be measured
			continue
		}
		b, _ := a.JSON() // the Value's own text: no copy
		n += len(b) + 1
	}
	return n
}
