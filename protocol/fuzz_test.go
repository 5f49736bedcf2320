package protocol

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzDecoder feeds data to a Decoder in two ways (at once, and in chunks of size
// 1+split%17) and checks that both agree, and that every decoded message survives an
// encode/decode round trip in its own protocol and can be written in the other one.
func fuzzDecoder(t *testing.T, p Protocol, data []byte, split uint8) {
	whole := decodeAll(p, [][]byte{data})
	var chunks [][]byte
	step := 1 + int(split)%17
	for i := 0; i < len(data); i += step {
		chunks = append(chunks, data[i:min(i+step, len(data))])
	}
	chunked := decodeAll(p, chunks)
	if !reflect.DeepEqual(whole, chunked) {
		t.Fatalf("whole and chunked decoding differ:\n%#v\n%#v", whole, chunked)
	}
	other := JSON()
	if p == other {
		other = MessagePack()
	}
	for _, m := range whole {
		if _, ok := m.(*Unknown); ok {
			if _, err := p.AppendFrame(nil, m); err == nil {
				t.Fatal("Unknown message encoded")
			}
			continue
		}
		frame, err := p.AppendFrame(nil, m)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", m, err)
		}
		again := decodeAll(p, [][]byte{frame})
		if len(again) != 1 || !reflect.DeepEqual(again[0], m) {
			t.Fatalf("round trip changed the message:\n%#v\n%#v\nframe %q", m, again, frame)
		}
		// Conversion may fail (NaN, extensions, numbers out of range), but what it
		// writes must parse.
		if frame, err := other.AppendFrame(nil, m); err == nil {
			if got := decodeAll(other, [][]byte{frame}); len(got) != 1 || got[0].Type() != m.Type() {
				t.Fatalf("converted frame %q does not decode to one %v", frame, m.Type())
			}
		}
	}
}

// decodeAll returns the messages up to the first error.
func decodeAll(p Protocol, chunks [][]byte) []Message {
	d := NewDecoder(p, 1<<16)
	var out []Message
	for _, c := range chunks {
		d.Write(c)
		for {
			m, err := d.Next()
			if err != nil {
				return out
			}
			if m == nil {
				break
			}
			out = append(out, m)
		}
	}
	return out
}

func FuzzJSONDecoder(f *testing.F) {
	for _, tc := range golden {
		f.Add([]byte(tc.json+"\x1e"), uint8(0))
	}
	stream, _ := goldenStream(f, JSON())
	f.Add(stream, uint8(3))
	for _, s := range []string{
		"{\"type\":1,\"target\":\"t\",\"arguments\":[1.5e300,-0,\"\\ud83d\\ude00\",{\"a\":[null]}],\"x\":{}}\x1e",
		"{\"type\":3,\"invocationId\":\"1\",\"result\":1,\"error\":\"x\"}\x1e",
		"{\"type\":42}\x1e{\"type\":6}\x1e",
		"{\"type\":1,\"target\":\"t\",\"arguments\":[1e400]}\x1e",
		"{\"type\":2,\"invocationId\":\"\\u001e\",\"item\":\"\\u0000\"}\x1e",
		"not json\x1e",
		"{\"type\":6",
		// Stateful reconnect: Ack and Sequence at the edges of their ids.
		"{\"type\":8,\"sequenceId\":9223372036854775807}\x1e{\"type\":9,\"sequenceId\":0}\x1e",
		"{\"type\":9,\"sequenceId\":-1}\x1e",
		"{\"type\":8,\"sequenceId\":1e30}\x1e",
		"{\"type\":8}\x1e",
	} {
		f.Add([]byte(s), uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		fuzzDecoder(t, JSON(), data, split)
	})
}

func FuzzMessagePackDecoder(f *testing.F) {
	for _, tc := range golden {
		body := unhexT(f, tc.msgpack)
		f.Add(append(AppendVarInt(nil, len(body)), body...), uint8(0))
	}
	stream, _ := goldenStream(f, MessagePack())
	f.Add(stream, uint8(3))
	for _, h := range []string{
		"0a 96 01 c0 c0 a174 91 cb 7ff8000000000000 90", // NaN argument
		"07 94 02 80 a131 d4 05 00",                     // extension item
		"08 94 02 80 a131 c4 02 0001",                   // bin item
		"0a 95 01 80 c0 a174 91 82 01 02 c0 03",         // map with non-string keys
		"03 92 63 c0",                                   // unknown type
		"80 80 80 80 80",                                // over-long varint
		"02 91",                                         // partial
		"0b 92 08 cf 7fffffffffffffff 03 92 09 00",      // Ack max, Sequence 0
		"0a 92 09 cf 8000000000000000",                  // Sequence beyond int64
		"03 92 08 ff",                                   // negative Ack
	} {
		f.Add(unhexT(f, h), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		fuzzDecoder(t, MessagePack(), data, split)
	})
}

func FuzzHandshake(f *testing.F) {
	for _, s := range []string{
		"{\"protocol\":\"json\",\"version\":1}\x1e",
		"{\"protocol\":\"messagepack\",\"version\":2}\x1e\x02\x91\x06",
		"{\"version\":2,\"protocol\":\"j\\u0073on\",\"x\":[1,{}]}\x1e{\"type\":6}\x1e",
		"{}\x1e",
		"{\"error\":\"nope\"}\x1e",
		"{\"type\":6}\x1e",
		"{\"protocol\":\"json\"",
		"\x1e",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, rest, err := ParseHandshakeRequest(data)
		if err == nil {
			again := append(AppendHandshakeRequest(nil, req), rest...)
			req2, rest2, err := ParseHandshakeRequest(again)
			if err != nil || req2 != req || !bytes.Equal(rest2, rest) {
				t.Fatalf("request round trip: %+v %q -> %+v %q %v", req, rest, req2, rest2, err)
			}
		}
		errText, rest, err := ParseHandshakeResponse(data)
		if err == nil {
			again := append(AppendHandshakeResponse(nil, errText), rest...)
			errText2, rest2, err := ParseHandshakeResponse(again)
			if err != nil || errText2 != errText || !bytes.Equal(rest2, rest) {
				t.Fatalf("response round trip: %q %q -> %q %q %v", errText, rest, errText2, rest2, err)
			}
		}
	})
}

// FuzzValueConversion checks that JSON -> MessagePack -> JSON reaches a fixed point
// after one round and that every conversion of a converted value succeeds.
func FuzzValueConversion(f *testing.F) {
	for _, s := range []string{`null`, `[1,-2,3.5,1e300,9223372036854775808]`, `{"a":{"b":["\u00e9\ud83d"]}}`, `"x"`, `true`, ` 0 `} {
		f.Add([]byte(s), false)
	}
	f.Add(unhexT(f, "83 a161 01 01 c4 01 ff c0 cf ffffffffffffffff"), true)
	f.Add(unhexT(f, "92 ca 3dcccccd d6 ff 00000001"), true)
	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		v := JSONValue(data)
		if binary {
			v = MessagePackValue(data)
		}
		mp, err := v.MessagePack()
		if err != nil {
			return
		}
		j1, err := MessagePackValue(mp).JSON()
		if err != nil {
			if binary {
				return // NaN, extensions: no JSON form
			}
			t.Fatalf("JSON %q -> MessagePack % x -> JSON failed: %v", data, mp, err)
		}
		mp2, err := JSONValue(j1).MessagePack()
		if err != nil {
			t.Fatalf("JSON %s from conversion does not convert back: %v", j1, err)
		}
		j2, err := MessagePackValue(mp2).JSON()
		if err != nil {
			t.Fatalf("second round: %v", err)
		}
		mp3, err := JSONValue(j2).MessagePack()
		if err != nil {
			t.Fatal(err)
		}
		j3, err := MessagePackValue(mp3).JSON()
		if err != nil || !bytes.Equal(j2, j3) {
			t.Fatalf("no fixed point: %s -> %s (%v)", j2, j3, err)
		}
	})
}

// FuzzValueDepth: Depth never panics, and a JSON value and its MessagePack conversion
// have the same depth.
func FuzzValueDepth(f *testing.F) {
	for _, s := range []string{`1`, `[[1],{"a":[2]}]`, `"[["`, `{"k":{"k":{"k":null}}}`, `[`, `["\"]"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := JSONValue(data)
		d, err := v.Depth()
		if err != nil {
			return
		}
		mp, err := v.MessagePack()
		if err != nil {
			return // valid JSON MessagePack cannot hold (1e400)
		}
		dm, err := MessagePackValue(mp).Depth()
		if err != nil || dm != d {
			t.Fatalf("%q: JSON depth %d, MessagePack depth %d (%v)", data, d, dm, err)
		}
	})
}
