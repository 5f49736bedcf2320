package protocol

import (
	"fmt"
	"math"
)

// Protocol is one hub protocol codec. The implementations are stateless and safe for
// concurrent use.
type Protocol interface {
	Name() string // "json" | "messagepack"
	Version() int // highest version supported (2)
	Binary() bool // transfer format: false = Text, true = Binary
	// AppendFrame appends m with its framing (0x1E terminator or VarInt prefix).
	// Both Message values and pointers (Invocation, *Invocation) are accepted. On
	// error dst is returned unchanged.
	AppendFrame(dst []byte, m Message) ([]byte, error)
	// AppendUnframed appends m without framing, as in upstream bodies.
	AppendUnframed(dst []byte, m Message) ([]byte, error)
	// ParseUnframed parses exactly one unframed message. Decoded messages are
	// pointers (*Invocation, ...) and do not reference data.
	ParseUnframed(data []byte) (Message, error)
}

// Lookup returns the protocol with the given case-sensitive name ("json" or
// "messagepack").
func Lookup(name string) (Protocol, bool) {
	switch name {
	case "json":
		return JSON(), true
	case "messagepack":
		return MessagePack(), true
	}
	return nil, false
}

// AppendVarInt appends the MessagePack framing prefix for a message of n bytes:
// 7 bits per byte, least significant first, high bit set on all but the last byte.
// n must be in [0, 2^31-1].
func AppendVarInt(dst []byte, n int) []byte {
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// ReadVarInt reads a MessagePack framing prefix from the start of b. It returns the
// length and the size of the prefix; size 0 means b holds only part of the prefix.
// Prefixes longer than 5 bytes or above 2^31-1 are errors.
func ReadVarInt(b []byte) (n, size int, err error) {
	var v uint64
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, nil
		}
		c := b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if v > math.MaxInt32 {
				return 0, 0, fmt.Errorf("%w: length prefix %d exceeds 2^31-1", ErrInvalidMessage, v)
			}
			return int(v), i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: length prefix longer than 5 bytes", ErrInvalidMessage)
}
