package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/protocol"
)

// Wire format of a Message between nodes (one Redis publish):
//
//	version byte (1), kind byte, then uvarint-length-prefixed strings
//	hub, user, group, conn, reason, origin, request id (uvarint), expires (varint,
//	unix ms), flags byte (1 OK, 2 NoTTL, 4 GroupLimit follows), excluded count +
//	strings, frame count + (protocol name, frame bytes), and, when flag 4 is set,
//	the group limit (uvarint).
//
// The group limit is a tail only an ack refusing a group add carries, so every
// other message is encoded as before it existed.
//
// The frames are those of the payload, encoded once per protocol by the publishing
// node: receiving nodes only copy them to their connections.
const wireVersion = 1

// maxWireItems bounds the counts a decoder believes, so a corrupt message cannot
// make it allocate without limit.
const maxWireItems = 1 << 16

var errWire = errors.New("cluster: malformed message")

// frameProtocols are the protocols whose frames travel with a payload.
var frameProtocols = []protocol.Protocol{protocol.JSON(), protocol.MessagePack()}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeMessage serializes msg; the payload's frames are encoded here if they
// were not already.
func encodeMessage(msg *Message) ([]byte, error) {
	b := make([]byte, 0, 128)
	b = append(b, wireVersion, byte(msg.Kind))
	for _, s := range [...]string{msg.Hub, msg.User, msg.Group, msg.Conn, msg.Reason, msg.Origin} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, msg.Request)
	b = binary.AppendVarint(b, msg.Expires)
	var flags byte
	if msg.OK {
		flags |= 1
	}
	if msg.NoTTL {
		flags |= 2
	}
	if msg.GroupLimit > 0 {
		flags |= flagGroupLimit
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(msg.Excluded)))
	for _, id := range msg.Excluded {
		b = appendString(b, id)
	}
	if msg.Payload == nil {
		b = binary.AppendUvarint(b, 0)
		return appendGroupLimit(b, msg), nil
	}
	type nf struct {
		name  string
		frame []byte
	}
	frames := make([]nf, 0, len(frameProtocols))
	for _, p := range frameProtocols {
		f, err := msg.Payload.Frame(p)
		if errors.Is(err, hub.ErrNoFrame) {
			continue // a pre-framed payload without this protocol
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: encode payload: %w", err)
		}
		frames = append(frames, nf{p.Name(), f})
	}
	b = binary.AppendUvarint(b, uint64(len(frames)))
	for _, f := range frames {
		b = appendString(b, f.name)
		b = binary.AppendUvarint(b, uint64(len(f.frame)))
		b = append(b, f.frame...)
	}
	return appendGroupLimit(b, msg), nil
}

// flagGroupLimit marks a message that ends with Message.GroupLimit.
const flagGroupLimit = 4

func appendGroupLimit(b []byte, msg *Message) []byte {
	if msg.GroupLimit <= 0 {
		return b
	}
	return binary.AppendUvarint(b, uint64(msg.GroupLimit))
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errWire
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errWire
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errWire
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errWire
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) count() int {
	n := r.uvarint()
	if n > maxWireItems {
		r.err = errWire
		return 0
	}
	return int(n)
}

// decodeMessage parses a message. The frames alias b, which the caller must not
// reuse.
func decodeMessage(b []byte) (*Message, error) {
	r := &reader{b: b}
	if v := r.byte(); r.err == nil && v != wireVersion {
		return nil, fmt.Errorf("%w: version %d", errWire, v)
	}
	msg := &Message{Kind: Kind(r.byte())}
	for _, s := range [...]*string{&msg.Hub, &msg.User, &msg.Group, &msg.Conn, &msg.Reason, &msg.Origin} {
		*s = string(r.bytes())
	}
	msg.Request = r.uvarint()
	msg.Expires = r.varint()
	flags := r.byte()
	msg.OK, msg.NoTTL = flags&1 != 0, flags&2 != 0
	if n := r.count(); n > 0 {
		msg.Excluded = make([]string, 0, min(n, len(r.b)))
		for i := 0; i < n && r.err == nil; i++ {
			msg.Excluded = append(msg.Excluded, string(r.bytes()))
		}
	}
	if n := r.count(); n > 0 && r.err == nil {
		frames := make(map[string][]byte, min(n, len(frameProtocols)))
		for i := 0; i < n && r.err == nil; i++ {
			name := string(r.bytes())
			frames[name] = r.bytes()
		}
		msg.Payload = hub.PayloadFromFrames(frames)
	}
	if flags&flagGroupLimit != 0 {
		if v := r.uvarint(); v > math.MaxInt32 {
			r.err = errWire
		} else {
			msg.GroupLimit = int(v)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errWire
	}
	if r.err == nil && (msg.Kind == 0 || msg.Kind >= kindEnd) {
		return nil, fmt.Errorf("%w: kind %d", errWire, msg.Kind)
	}
	if r.err != nil {
		return nil, r.err
	}
	return msg, nil
}
