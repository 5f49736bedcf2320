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

	mu     sync.Mutex
	frames map[string]frameResult
}

type frameResult struct {
	frame []byte
	err   error
}

// NewPayload returns a payload that encodes m lazily, once per protocol.
func NewPayload(m protocol.Message) *Payload {
	return &Payload{msg: m, frames: make(map[string]frameResult, 2)}
}

// PayloadFromFrames returns a payload serving the given pre-framed bytes keyed by
// protocol name ("json", "messagepack"). Protocols without a frame get ErrNoFrame.
// The map and the byte slices must not be modified afterwards.
func PayloadFromFrames(frames map[string][]byte) *Payload {
	p := &Payload{frames: make(map[string]frameResult, len(frames))}
	for name, f := range frames {
		p.frames[name] = frameResult{frame: f}
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
	if fr, ok := p.frames[name]; ok {
		return fr.frame, fr.err
	}
	if p.msg == nil {
		return nil, fmt.Errorf("%w %q", ErrNoFrame, name)
	}
	frame, err := proto.AppendFrame(nil, p.msg)
	if err != nil {
		err = fmt.Errorf("hub: encode %s frame: %w", name, err)
		frame = nil
	}
	p.frames[name] = frameResult{frame: frame, err: err}
	return frame, err
}
