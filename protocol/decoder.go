package protocol

import (
	"bytes"
	"fmt"
)

// Decoder turns the byte stream of one connection into messages. It buffers what
// Write receives, handles several messages per transport frame and messages split
// across frames, and enforces a maximum message size. A Decoder is not safe for
// concurrent use.
//
// Errors are final: after Next has returned an error it returns the same error
// forever, since the stream position is lost and the connection must be closed.
type Decoder struct {
	p       Protocol
	binary  bool
	max     int
	buf     []byte
	off     int // start of the bytes not consumed yet
	scanned int // JSON: bytes after off already searched for 0x1E
	err     error
}

// keepBuffer is the capacity kept across messages; a larger buffer grown for one
// big message is released once empty so that idle connections stay small.
const keepBuffer = 64 << 10

// NewDecoder returns a Decoder for p. maxMessageSize bounds one message (without
// framing); 0 or less means no limit.
func NewDecoder(p Protocol, maxMessageSize int) *Decoder {
	return &Decoder{p: p, binary: p.Binary(), max: maxMessageSize}
}

// Write appends bytes received from the transport. b is copied and may be reused
// by the caller once Write returns.
func (d *Decoder) Write(b []byte) {
	if d.err != nil || len(b) == 0 {
		return
	}
	switch rest := len(d.buf) - d.off; {
	case rest == 0:
		// Everything was consumed: start over without moving anything.
		if cap(d.buf) > keepBuffer && len(b) <= keepBuffer {
			d.buf = nil
		}
		d.buf = d.buf[:0]
	case d.off > 0 && len(d.buf)+len(b) > cap(d.buf):
		// Move only the incomplete tail to the front, and only when appending would
		// otherwise grow the buffer.
		d.buf = d.buf[:copy(d.buf, d.buf[d.off:])]
	default:
		d.buf = append(d.buf, b...)
		return
	}
	d.off = 0
	d.buf = append(d.buf, b...)
}

// Buffered returns the number of received bytes not yet returned as messages.
func (d *Decoder) Buffered() int { return len(d.buf) - d.off }

// Next returns the next complete message, or (nil, nil) when more bytes are needed.
// Messages are pointers (*Invocation, ...), or *Unknown for types this version does
// not know, and do not reference the Decoder's buffer. A message larger than the
// limit yields ErrMessageTooLarge as soon as its size is known.
func (d *Decoder) Next() (Message, error) {
	if d.err != nil {
		return nil, d.err
	}
	data := d.buf[d.off:]
	if len(data) == 0 {
		return nil, nil
	}
	var body []byte
	if d.binary {
		n, size, err := ReadVarInt(data)
		if err != nil {
			return nil, d.fail(err)
		}
		if size == 0 {
			return nil, nil
		}
		if d.max > 0 && n > d.max {
			return nil, d.fail(fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, n, d.max))
		}
		if n == 0 {
			return nil, d.fail(fmt.Errorf("%w: empty MessagePack message", ErrInvalidMessage))
		}
		if len(data)-size < n {
			return nil, nil
		}
		body = data[size : size+n]
		d.off += size + n
	} else {
		i := bytes.IndexByte(data[d.scanned:], RecordSeparator)
		if i < 0 {
			d.scanned = len(data)
			if d.max > 0 && len(data) > d.max {
				return nil, d.fail(fmt.Errorf("%w: more than %d bytes without a record separator", ErrMessageTooLarge, d.max))
			}
			return nil, nil
		}
		i += d.scanned
		if d.max > 0 && i > d.max {
			return nil, d.fail(fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, i, d.max))
		}
		body = data[:i]
		d.off += i + 1
		d.scanned = 0
	}
	m, err := d.p.ParseUnframed(body)
	if err != nil {
		return nil, d.fail(err)
	}
	return m, nil
}

func (d *Decoder) fail(err error) error {
	d.err = fmt.Errorf("protocol: %s decoder: %w", d.p.Name(), err)
	d.buf, d.off = nil, 0
	return d.err
}
