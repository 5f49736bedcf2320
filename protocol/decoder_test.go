package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// goldenStream returns every golden message framed in p, concatenated.
func goldenStream(t testing.TB, p Protocol) ([]byte, []Message) {
	t.Helper()
	var stream []byte
	var msgs []Message
	for _, tc := range golden {
		var err error
		if stream, err = p.AppendFrame(stream, tc.msg); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, tc.msg)
	}
	return stream, msgs
}

// drain reads every available message.
func drain(t testing.TB, d *Decoder) []Message {
	t.Helper()
	var out []Message
	for {
		m, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		if m == nil {
			return out
		}
		out = append(out, m)
	}
}

// sameJSON compares messages by their JSON encoding, so that MessagePack-origin
// values compare equal to JSON-origin ones.
func sameJSON(t testing.TB, got, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range got {
		g, err1 := JSON().AppendUnframed(nil, got[i])
		w, err2 := JSON().AppendUnframed(nil, want[i])
		if err1 != nil || err2 != nil || !bytes.Equal(g, w) {
			t.Errorf("message %d: got %s (%v), want %s (%v)", i, g, err1, w, err2)
		}
	}
}

func TestDecoderSplitAndBatched(t *testing.T) {
	for _, p := range []Protocol{JSON(), MessagePack()} {
		stream, want := goldenStream(t, p)
		t.Run(p.Name()+"/one write", func(t *testing.T) {
			d := NewDecoder(p, 1<<20)
			d.Write(stream)
			sameJSON(t, drain(t, d), want)
			if d.Buffered() != 0 {
				t.Errorf("Buffered = %d", d.Buffered())
			}
		})
		t.Run(p.Name()+"/byte by byte", func(t *testing.T) {
			d := NewDecoder(p, 1<<20)
			var got []Message
			for i := range stream {
				d.Write(stream[i : i+1])
				got = append(got, drain(t, d)...)
			}
			sameJSON(t, got, want)
		})
		t.Run(p.Name()+"/odd chunks, caller reuses its buffer", func(t *testing.T) {
			d := NewDecoder(p, 1<<20)
			var got []Message
			buf := make([]byte, 7)
			for i := 0; i < len(stream); i += 7 {
				n := copy(buf, stream[i:])
				d.Write(buf[:n])
				got = append(got, drain(t, d)...)
				clear(buf) // messages must not alias what was written
			}
			sameJSON(t, got, want)
		})
		t.Run(p.Name()+"/values do not alias the buffer", func(t *testing.T) {
			d := NewDecoder(p, 1<<20)
			frame, _ := p.AppendFrame(nil, &Invocation{Target: "t", Arguments: []Value{jv(`"abc"`)}})
			d.Write(frame)
			m, err := d.Next()
			if err != nil || m == nil {
				t.Fatal(m, err)
			}
			junk := bytes.Repeat([]byte{'z'}, len(frame)-1)
			d.Write(junk) // reuses the decoder's buffer
			if s := m.(*Invocation).Arguments[0].String(); s != `"abc"` {
				t.Fatalf("argument changed to %s", s)
			}
		})
	}
}

func TestDecoderMaxMessageSize(t *testing.T) {
	big := &Invocation{Target: "t", Arguments: []Value{jv(`"` + strings.Repeat("a", 100) + `"`)}}
	for _, p := range []Protocol{JSON(), MessagePack()} {
		frame, _ := p.AppendFrame(nil, big)
		body, _ := p.AppendUnframed(nil, big)
		t.Run(p.Name(), func(t *testing.T) {
			// Exactly at the limit passes.
			d := NewDecoder(p, len(body))
			d.Write(frame)
			if m, err := d.Next(); err != nil || m == nil {
				t.Fatalf("at limit: %v %v", m, err)
			}
			// One byte less fails, and the error sticks.
			d = NewDecoder(p, len(body)-1)
			d.Write(frame)
			if _, err := d.Next(); !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("over limit: %v", err)
			}
			d.Write(frame)
			if _, err := d.Next(); !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("error not sticky: %v", err)
			}
			// Detected before the whole message has arrived.
			d = NewDecoder(p, 50)
			d.Write(frame[:60])
			if _, err := d.Next(); !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("partial over limit: %v", err)
			}
		})
	}
	// Incomplete JSON below the limit just waits.
	d := NewDecoder(JSON(), 50)
	d.Write([]byte(`{"type":6`))
	if m, err := d.Next(); m != nil || err != nil {
		t.Fatalf("incomplete: %v %v", m, err)
	}
	d.Write([]byte("}\x1e"))
	if m, err := d.Next(); err != nil || m.Type() != PingType {
		t.Fatalf("completed: %v %v", m, err)
	}
	// No limit.
	d = NewDecoder(MessagePack(), 0)
	frame, _ := MessagePack().AppendFrame(nil, big)
	d.Write(frame)
	if m, err := d.Next(); err != nil || m == nil {
		t.Fatalf("unlimited: %v %v", m, err)
	}
}

func TestDecoderErrors(t *testing.T) {
	tests := []struct {
		p    Protocol
		in   []byte
		want string
	}{
		{JSON(), []byte("garbage\x1e"), "expected '{'"},
		{JSON(), []byte("\x1e"), "unexpected end"},
		{JSON(), []byte("{\"type\":6}\x1e{\"type\":\"x\"}\x1e"), "property type"},
		{MessagePack(), []byte{0x00}, "empty MessagePack message"},
		{MessagePack(), []byte{0x80, 0x80, 0x80, 0x80, 0x80}, "longer than 5 bytes"},
		{MessagePack(), []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, "exceeds 2^31-1"},
		{MessagePack(), []byte{0x02, 0x91, 0x06, 0x01, 0x81}, "not an array"},
		{MessagePack(), []byte("\x05hello"), "not an array"},
	}
	for _, tc := range tests {
		d := NewDecoder(tc.p, 1<<20)
		d.Write(tc.in)
		var err error
		for range 3 {
			var m Message
			if m, err = d.Next(); err != nil || m == nil {
				break
			}
		}
		if err == nil || !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: error %v, want %q", tc.p.Name(), tc.in, err, tc.want)
		}
	}
	// A varint that has not finished yet is not an error.
	d := NewDecoder(MessagePack(), 0)
	d.Write([]byte{0x80, 0x80})
	if m, err := d.Next(); m != nil || err != nil {
		t.Fatalf("partial varint: %v %v", m, err)
	}
}

func TestDecoderReleasesBigBuffer(t *testing.T) {
	d := NewDecoder(JSON(), 0)
	arg := `"` + strings.Repeat("a", 2*keepBuffer) + `"`
	frame, _ := JSON().AppendFrame(nil, &Invocation{Target: "t", Arguments: []Value{jv(arg)}})
	d.Write(frame)
	if m, err := d.Next(); err != nil || m == nil {
		t.Fatal(m, err)
	}
	d.Write([]byte("{\"type\":6}\x1e"))
	if cap(d.buf) > keepBuffer {
		t.Fatalf("buffer of %d bytes kept", cap(d.buf))
	}
	if m, err := d.Next(); err != nil || m.Type() != PingType {
		t.Fatal(m, err)
	}
}

func TestVarInt(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 5248, 16383, 16384, 1<<21 - 1, 1 << 28, 1<<31 - 1} {
		b := AppendVarInt(nil, n)
		got, size, err := ReadVarInt(b)
		if err != nil || got != n || size != len(b) {
			t.Errorf("%d: % x -> %d %d %v", n, b, got, size, err)
		}
	}
	if b := AppendVarInt(nil, 5248); !reflect.DeepEqual(b, []byte{0x80, 0x29}) {
		t.Errorf("5248 = % x", b)
	}
}

func TestMessagePackFrameLengths(t *testing.T) {
	// Bodies around each VarInt size boundary: the body is shifted to fit the prefix.
	for _, n := range []int{100, 118, 119, 120, 200, 16372, 16373, 16400, 3 << 20} {
		m := &StreamItem{InvocationID: "1", Item: jv(`"` + strings.Repeat("a", n) + `"`)}
		body, err := MessagePack().AppendUnframed(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := MessagePack().AppendFrame([]byte{0xee}, m)
		if err != nil {
			t.Fatal(err)
		}
		size, hl, err := ReadVarInt(frame[1:])
		if err != nil || size != len(body) || !bytes.Equal(frame[1+hl:], body) {
			t.Fatalf("body %d: prefix says %d (%v), frame %d bytes", len(body), size, err, len(frame))
		}
		d := NewDecoder(MessagePack(), 0)
		d.Write(frame[1:])
		got, err := d.Next()
		if err != nil || !reflect.DeepEqual(got.(*StreamItem).Item.String(), m.Item.String()) {
			t.Fatalf("body %d: decode %v", len(body), err)
		}
	}
}
