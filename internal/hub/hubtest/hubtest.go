// Package hubtest provides the test doubles of the hub's seams, in the way of
// net/http/httptest: a Client that records what it is sent, a Proto that frames
// invocations as readable text, and a settable Clock. The tests of internal/hub,
// internal/cluster and internal/restapi share them instead of each keeping a copy.
package hubtest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// Proto frames an invocation as "<name>:<target>" and counts its encodings, so a test
// sees which protocol a recipient got and how often a payload was encoded.
type Proto struct {
	name string
	// Encodes counts AppendFrame calls.
	Encodes atomic.Int64
	// Fail makes every encoding fail.
	Fail bool
}

// NewProto returns a Proto named name; "json" is a text protocol, any other binary.
func NewProto(name string) *Proto { return &Proto{name: name} }

func (p *Proto) Name() string { return p.name }
func (p *Proto) Version() int { return 2 }
func (p *Proto) Binary() bool { return p.name != "json" }

// AppendFrame appends "<name>:<target>".
func (p *Proto) AppendFrame(dst []byte, m protocol.Message) ([]byte, error) {
	p.Encodes.Add(1)
	if p.Fail {
		return nil, errors.New("hubtest: encoding fails")
	}
	inv, ok := m.(*protocol.Invocation)
	if !ok {
		return nil, fmt.Errorf("hubtest: cannot frame %T", m)
	}
	return append(dst, p.name+":"+inv.Target...), nil
}

// AppendUnframed is AppendFrame.
func (p *Proto) AppendUnframed(dst []byte, m protocol.Message) ([]byte, error) {
	return p.AppendFrame(dst, m)
}

// ParseUnframed always fails: nothing is ever read with a Proto.
func (p *Proto) ParseUnframed([]byte) (protocol.Message, error) {
	return nil, errors.New("hubtest: Proto does not parse")
}

// Client is a hub.Client that records the frames it is sent and whether it was closed.
type Client struct {
	id, hub, user string
	proto         protocol.Protocol
	// OnSend, if set, runs inside Send (to prove that no lock is held while sending).
	OnSend func()

	mu          sync.Mutex
	frames      [][]byte
	closed      bool
	closeReason string
}

// NewClient returns a client of hub with connection id and user (empty: anonymous).
func NewClient(hub, id, user string, p protocol.Protocol) *Client {
	return &Client{id: id, hub: hub, user: user, proto: p}
}

func (c *Client) ID() string                  { return c.id }
func (c *Client) Hub() string                 { return c.hub }
func (c *Client) UserID() string              { return c.user }
func (c *Client) Protocol() protocol.Protocol { return c.proto }

// Send records a copy of frame.
func (c *Client) Send(frame []byte) bool {
	if c.OnSend != nil {
		c.OnSend()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, append([]byte(nil), frame...))
	return true
}

// Close records the close and its reason.
func (c *Client) Close(reason string, _ bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed, c.closeReason = true, reason
}

// Frames returns the frames received so far.
func (c *Client) Frames() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.frames...)
}

// Got returns the frames received so far as strings (readable with a Proto).
func (c *Client) Got() []string {
	var out []string
	for _, f := range c.Frames() {
		out = append(out, string(f))
	}
	return out
}

// Take returns the frames received since the last Take as strings, without the JSON
// record separator, and forgets them.
func (c *Client) Take() []string {
	c.mu.Lock()
	frames := c.frames
	c.frames = nil
	c.mu.Unlock()
	out := make([]string, 0, len(frames))
	for _, f := range frames {
		out = append(out, strings.TrimSuffix(string(f), "\x1e"))
	}
	return out
}

// Closed reports whether Close was called, and with which reason.
func (c *Client) Closed() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.closeReason
}

// Invocations decodes every frame received with the client's (real) protocol.
func (c *Client) Invocations(t testing.TB) []*protocol.Invocation {
	t.Helper()
	var out []*protocol.Invocation
	for _, f := range c.Frames() {
		d := protocol.NewDecoder(c.proto, 1<<20)
		d.Write(f)
		for {
			m, err := d.Next()
			if err != nil {
				t.Fatalf("%s: decode frame %q: %v", c.id, f, err)
			}
			if m == nil {
				break
			}
			inv, ok := m.(*protocol.Invocation)
			if !ok {
				t.Fatalf("%s: got %T, want *Invocation", c.id, m)
			}
			out = append(out, inv)
		}
	}
	return out
}

// Targets lists the invocations received as "target" or "target:first argument".
func (c *Client) Targets(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, inv := range c.Invocations(t) {
		s := inv.Target
		if len(inv.Arguments) > 0 {
			var a any
			if err := inv.Arguments[0].Decode(&a); err != nil {
				t.Fatalf("decode argument: %v", err)
			}
			s += fmt.Sprintf(":%v", a)
		}
		out = append(out, s)
	}
	return out
}

// Clock is a clock that moves only when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
