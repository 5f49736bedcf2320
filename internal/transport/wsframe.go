package transport

import (
	"encoding/binary"
	"fmt"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes used here (RFC 6455 section 7.4.1).
const (
	StatusNormalClosure   = 1000
	StatusGoingAway       = 1001
	StatusProtocolError   = 1002
	StatusNoStatus        = 1005
	StatusPolicyViolation = 1008
	StatusInternalError   = 1011
)

// maxHeaderSize is the longest server frame header: 2 bytes, 8 of extended length, no
// mask. Outbound batches keep this much room in front of their payload.
const maxHeaderSize = 10

// protocolError is a violation of RFC 6455 by the client; the connection is closed
// with status 1002.
type protocolError string

func (e protocolError) Error() string { return "websocket: protocol error: " + string(e) }

// frameSink receives what frameReader parses.
type frameSink interface {
	// data receives payload bytes of a data message (unmasked, only valid during the
	// call); final marks the last bytes of the message.
	data(chunk []byte, final bool) error
	// control receives the complete payload of a control frame.
	control(op byte, payload []byte) error
}

// frameReader parses the frames a client sends, from bytes arriving in arbitrary
// pieces. Payloads are unmasked in place and streamed to the sink, so nothing but a
// partial header (at most 14 bytes) or a partial control frame (at most 125) is kept
// between reads; an idle connection's reader holds no buffer.
type frameReader struct {
	ctl     []byte // a control frame's payload gathered across reads; usually nil
	remain  uint64 // payload bytes of the current frame still to come
	hdr     [14]byte
	mask    [4]byte
	hdrLen  uint8
	maskPos uint8
	op      byte
	inFrame bool // the header is parsed; remain bytes of payload follow
	fin     bool
	inMsg   bool // a fragmented data message is in progress
}

// idle reports whether the reader is between frames with nothing buffered.
func (fr *frameReader) idle() bool { return !fr.inFrame && fr.hdrLen == 0 && !fr.inMsg }

// feed parses b (which it unmasks in place) and hands what it completes to sink.
func (fr *frameReader) feed(b []byte, sink frameSink) error {
	for len(b) > 0 {
		if !fr.inFrame {
			n, err := fr.readHeader(b)
			b = b[n:]
			if err != nil {
				return err
			}
			if !fr.inFrame {
				return nil // the header is still incomplete
			}
			if fr.remain == 0 {
				if err := fr.frameDone(nil, sink); err != nil {
					return err
				}
			}
			continue
		}
		n := len(b)
		if uint64(n) > fr.remain {
			n = int(fr.remain)
		}
		chunk := b[:n]
		b = b[n:]
		fr.maskPos = unmask(chunk, fr.mask, fr.maskPos)
		fr.remain -= uint64(n)
		if fr.op >= opClose {
			if fr.remain == 0 && fr.ctl == nil {
				// The whole control payload came in this piece: no copy.
				if err := fr.frameDone(chunk, sink); err != nil {
					return err
				}
				continue
			}
			fr.ctl = append(fr.ctl, chunk...)
			if fr.remain == 0 {
				p := fr.ctl
				fr.ctl = nil
				if err := fr.frameDone(p, sink); err != nil {
					return err
				}
			}
			continue
		}
		final := fr.fin && fr.remain == 0
		if final {
			fr.inFrame, fr.inMsg = false, false
		} else if fr.remain == 0 {
			fr.inFrame = false
		}
		if err := sink.data(chunk, final); err != nil {
			return err
		}
	}
	return nil
}

// readHeader consumes header bytes from b; it sets inFrame once the header is whole.
func (fr *frameReader) readHeader(b []byte) (int, error) {
	used := 0
	need := 2
	for {
		for int(fr.hdrLen) < need && used < len(b) {
			fr.hdr[fr.hdrLen] = b[used]
			fr.hdrLen++
			used++
		}
		if int(fr.hdrLen) < need {
			return used, nil
		}
		if fr.hdr[1]&0x80 == 0 {
			// Checked before waiting for the rest: an unmasked frame has no mask key.
			fr.hdrLen = 0
			return used, protocolError("client frame is not masked")
		}
		full := 6 // 2 + mask
		switch fr.hdr[1] & 0x7f {
		case 126:
			full += 2
		case 127:
			full += 8
		}
		if need == full {
			break
		}
		need = full
	}
	b0, b1 := fr.hdr[0], fr.hdr[1]
	fr.hdrLen = 0
	if b0&0x70 != 0 {
		return used, protocolError("reserved bits set without a negotiated extension")
	}
	op, fin := b0&0x0f, b0&0x80 != 0
	var size uint64
	var maskAt int
	switch l := b1 & 0x7f; l {
	case 126:
		size, maskAt = uint64(binary.BigEndian.Uint16(fr.hdr[2:4])), 4
	case 127:
		size, maskAt = binary.BigEndian.Uint64(fr.hdr[2:10]), 10
		if size>>63 != 0 {
			return used, protocolError("frame length has its most significant bit set")
		}
	default:
		size, maskAt = uint64(l), 2
	}
	switch op {
	case opClose, opPing, opPong:
		if !fin {
			return used, protocolError("fragmented control frame")
		}
		if size > 125 {
			return used, protocolError("control frame payload longer than 125 bytes")
		}
	case opText, opBinary:
		if fr.inMsg {
			return used, protocolError("new data message before the previous one ended")
		}
		fr.inMsg = true
	case opContinuation:
		if !fr.inMsg {
			return used, protocolError("continuation frame without a message")
		}
	default:
		return used, protocolError(fmt.Sprintf("unknown opcode %d", op))
	}
	copy(fr.mask[:], fr.hdr[maskAt:maskAt+4])
	fr.op, fr.fin, fr.remain, fr.maskPos, fr.inFrame = op, fin, size, 0, true
	return used, nil
}

// frameDone finishes a frame whose payload is complete (control frames, and data
// frames without payload).
func (fr *frameReader) frameDone(payload []byte, sink frameSink) error {
	fr.inFrame = false
	if fr.op >= opClose {
		return sink.control(fr.op, payload)
	}
	if !fr.fin {
		return nil
	}
	fr.inMsg = false
	return sink.data(nil, true)
}

// unmask XORs b with the mask starting at mask position pos; it returns the next
// position.
func unmask(b []byte, mask [4]byte, pos uint8) uint8 {
	if len(b) == 0 {
		return pos
	}
	i := 0
	// Align to the mask, then XOR eight bytes at a time.
	for ; i < len(b) && pos != 0; i++ {
		b[i] ^= mask[pos]
		pos = (pos + 1) & 3
	}
	if len(b)-i >= 8 {
		m := uint64(binary.LittleEndian.Uint32(mask[:]))
		m |= m << 32
		for ; len(b)-i >= 8; i += 8 {
			binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^m)
		}
	}
	for ; i < len(b); i++ {
		b[i] ^= mask[pos]
		pos = (pos + 1) & 3
	}
	return pos
}

// putHeader writes the header of an unmasked server frame so that it ends exactly
// at dst[end] (the payload follows at end); it returns where the header starts.
func putHeader(dst []byte, end int, op byte, size int) int {
	switch {
	case size <= 125:
		dst[end-2] = 0x80 | op
		dst[end-1] = byte(size)
		return end - 2
	case size <= 0xffff:
		dst[end-4] = 0x80 | op
		dst[end-3] = 126
		binary.BigEndian.PutUint16(dst[end-2:end], uint16(size))
		return end - 4
	default:
		dst[end-10] = 0x80 | op
		dst[end-9] = 127
		binary.BigEndian.PutUint64(dst[end-8:end], uint64(size))
		return end - 10
	}
}

// parseClose splits a close frame's payload into its status and reason.
func parseClose(p []byte) (code int, reason string, err error) {
	switch {
	case len(p) == 0:
		return StatusNoStatus, "", nil
	case len(p) == 1:
		return 0, "", protocolError("close frame with a one-byte payload")
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, "", protocolError(fmt.Sprintf("invalid close status %d", code))
	}
	return code, string(p[2:]), nil
}

func validCloseCode(c int) bool {
	switch {
	case c >= 3000 && c <= 4999:
		return true
	case c >= 1000 && c <= 1014:
		return c != 1004 && c != 1005 && c != 1006
	}
	return false
}
