package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op byte, payload []byte, mask [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var f []byte
	switch n := len(payload); {
	case n <= 125:
		f = []byte{b0, 0x80 | byte(n)}
	case n <= 0xffff:
		f = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		f = []byte{b0, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint64(f[2:], uint64(n))
	}
	f = append(f, mask[:]...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

// recorder is a frameSink that keeps what it was given.
type recorder struct {
	msgs [][]byte
	cur  []byte
	ctls []string
}

func (r *recorder) data(chunk []byte, final bool) error {
	r.cur = append(r.cur, chunk...)
	if final {
		r.msgs = append(r.msgs, r.cur)
		r.cur = nil
	}
	return nil
}

func (r *recorder) control(op byte, payload []byte) error {
	r.ctls = append(r.ctls, string([]byte{op})+string(payload))
	return nil
}

var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// Every split of the input into two reads gives the same messages: frames are
// parsed across reads, a control frame may sit between the fragments of a message,
// and payloads of every length encoding are unmasked.
func TestFrameReaderAcrossReads(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 7000) // 64-bit length
	mid := bytes.Repeat([]byte("x"), 300)           // 16-bit length
	var in []byte
	in = append(in, clientFrame(true, opText, []byte("hello"), testMask)...)
	in = append(in, clientFrame(false, opBinary, mid[:100], testMask)...)
	in = append(in, clientFrame(true, opPing, []byte("p"), testMask)...)
	in = append(in, clientFrame(false, opContinuation, nil, testMask)...)
	in = append(in, clientFrame(true, opContinuation, mid[100:], testMask)...)
	in = append(in, clientFrame(true, opBinary, big, testMask)...)
	in = append(in, clientFrame(true, opText, nil, testMask)...)
	want := [][]byte{[]byte("hello"), mid, big, nil}
	for _, split := range []int{0, 1, 2, 3, 7, 8, 12, 20, 150, 400, len(in) - 1} {
		var fr frameReader
		var r recorder
		b := append([]byte(nil), in...)
		if err := fr.feed(b[:split], &r); err != nil {
			t.Fatalf("split %d: %v", split, err)
		}
		if err := fr.feed(b[split:], &r); err != nil {
			t.Fatalf("split %d: %v", split, err)
		}
		if len(r.msgs) != len(want) {
			t.Fatalf("split %d: %d messages", split, len(r.msgs))
		}
		for i := range want {
			if !bytes.Equal(r.msgs[i], want[i]) {
				t.Fatalf("split %d: message %d differs (%d bytes, want %d)", split, i, len(r.msgs[i]), len(want[i]))
			}
		}
		if len(r.ctls) != 1 || r.ctls[0] != "\x09p" {
			t.Fatalf("split %d: control %q", split, r.ctls)
		}
		if !fr.idle() || fr.ctl != nil {
			t.Fatalf("split %d: reader not idle after whole frames", split)
		}
	}
}

func TestFrameReaderProtocolErrors(t *testing.T) {
	unmasked := []byte{0x81, 0x01, 'a'}
	cases := map[string][]byte{
		"unmasked":             unmasked,
		"reserved bit":         append([]byte{0xC1}, clientFrame(true, opText, nil, testMask)[1:]...),
		"unknown opcode":       clientFrame(true, 0x3, nil, testMask),
		"fragmented control":   clientFrame(false, opPing, nil, testMask),
		"long control":         clientFrame(true, opPing, make([]byte, 126), testMask),
		"lone continuation":    clientFrame(true, opContinuation, []byte("a"), testMask),
		"message in a message": append(clientFrame(false, opText, []byte("a"), testMask), clientFrame(true, opText, []byte("b"), testMask)...),
		"64-bit length MSB":    {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},
	}
	for name, in := range cases {
		var fr frameReader
		var pe protocolError
		if err := fr.feed(in, &recorder{}); !errors.As(err, &pe) {
			t.Errorf("%s: error %v, want a protocol error", name, err)
		}
	}
}

func TestParseClose(t *testing.T) {
	if code, _, err := parseClose(nil); err != nil || code != StatusNoStatus {
		t.Fatalf("empty: %d %v", code, err)
	}
	if code, reason, err := parseClose([]byte{0x03, 0xe8, 'o', 'k'}); err != nil || code != 1000 || reason != "ok" {
		t.Fatalf("1000: %d %q %v", code, reason, err)
	}
	for _, p := range [][]byte{{0x03}, {0x03, 0xed}, {0x00, 0x10}, {0x13, 0x88}} {
		if _, _, err := parseClose(p); err == nil {
			t.Errorf("%x accepted", p)
		}
	}
}

func TestPutHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		buf := make([]byte, Headroom+n)
		start := putHeader(buf, Headroom, opBinary, n)
		var fr frameReader
		// Re-mask it as a client would, to parse it back.
		h := buf[start:Headroom]
		if h[0] != 0x82 {
			t.Fatalf("%d: first byte %x", n, h[0])
		}
		f := append([]byte{h[0], h[1] | 0x80}, h[2:]...)
		f = append(f, 0, 0, 0, 0)
		f = append(f, buf[Headroom:]...)
		var r recorder
		if err := fr.feed(f, &r); err != nil || len(r.msgs) != 1 || len(r.msgs[0]) != n {
			t.Fatalf("%d: %v %d messages", n, err, len(r.msgs))
		}
	}
}

func TestUnmaskMatchesBytewise(t *testing.T) {
	for n := 0; n < 40; n++ {
		for pos := uint8(0); pos < 4; pos++ {
			b := bytes.Repeat([]byte{0xA5}, n)
			want := append([]byte(nil), b...)
			p := pos
			for i := range want {
				want[i] ^= testMask[p]
				p = (p + 1) & 3
			}
			if got := unmask(b, testMask, pos); got != p || !bytes.Equal(b, want) {
				t.Fatalf("n %d pos %d: %x, want %x", n, pos, b, want)
			}
		}
	}
}

// FuzzFrameReader: arbitrary bytes in arbitrary pieces never panic, and what a
// valid stream carries comes out whole whatever the split.
func FuzzFrameReader(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte("hi"), testMask), uint16(1))
	f.Add(append(clientFrame(false, opBinary, []byte("a"), testMask), clientFrame(true, opContinuation, []byte("b"), testMask)...), uint16(7))
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		whole := append([]byte(nil), in...)
		var fr1 frameReader
		var r1 recorder
		err1 := fr1.feed(whole, &r1)

		s := int(split) % (len(in) + 1)
		pieces := append([]byte(nil), in...)
		var fr2 frameReader
		var r2 recorder
		err2 := fr2.feed(pieces[:s], &r2)
		if err2 == nil {
			err2 = fr2.feed(pieces[s:], &r2)
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("split %d changes the outcome: %v vs %v", s, err1, err2)
		}
		if err1 == nil {
			if len(r1.msgs) != len(r2.msgs) || len(r1.ctls) != len(r2.ctls) {
				t.Fatalf("split %d changes the messages", s)
			}
			for i := range r1.msgs {
				if !bytes.Equal(r1.msgs[i], r2.msgs[i]) {
					t.Fatalf("split %d changes message %d", s, i)
				}
			}
		}
	})
}
