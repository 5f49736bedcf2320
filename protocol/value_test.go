package protocol

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
)

func TestJSONToMessagePack(t *testing.T) {
	long := strings.Repeat("x", 40)
	arr20 := "[" + strings.TrimSuffix(strings.Repeat("1,", 20), ",") + "]"
	tests := []struct{ json, msgpack string }{
		{`null`, "c0"},
		{`true`, "c3"},
		{`false`, "c2"},
		{`0`, "00"},
		{`-0`, "00"},
		{`-1`, "ff"},
		{`127`, "7f"},
		{`-33`, "d0 df"},
		{`65536`, "d2 00010000"},
		{`9223372036854775807`, "d3 7fffffffffffffff"},
		{`-9223372036854775808`, "d3 8000000000000000"},
		{`9223372036854775808`, "cb 43e0000000000000"},
		{`1.5`, "cb 3ff8000000000000"},
		{`1e3`, "cb 408f400000000000"},
		{`-2.5E-1`, "cb bfd0000000000000"},
		{`""`, "a0"},
		{`"a"`, "a1 61"},
		{`"\u00e9\n\"\/"`, "a5 c3a9 0a 22 2f"},
		{`"\ud83d\ude00"`, "a4 f09f9880"},
		{`"\ud83d"`, "a3 efbfbd"},
		{`"` + long + `"`, "d9 28 " + strings.Repeat("78", 40)},
		{`"\t` + long + `"`, "d9 29 09" + strings.Repeat("78", 40)},
		{`[]`, "90"},
		{`{}`, "80"},
		{` [ 1 , [ ] , { } ] `, "93 01 90 80"},
		{`{"a":1,"b":[true,null]}`, "82 a161 01 a162 92 c3 c0"},
		{`{"\u0061":1}`, "81 a161 01"},
		{arr20, "dc 0014" + strings.Repeat("01", 20)},
	}
	for _, tc := range tests {
		got, err := jv(tc.json).MessagePack()
		if err != nil {
			t.Errorf("%s: %v", tc.json, err)
			continue
		}
		if want := unhexT(t, tc.msgpack); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got % x\nwant % x", tc.json, got, want)
		}
	}
}

func TestJSONToMessagePackLarge(t *testing.T) {
	// Big containers and strings need the 16/32-bit headers after the fix-up.
	var sb strings.Builder
	sb.WriteString(`{`)
	for i := range 70000 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`"k`)
		sb.WriteString(strings.Repeat("a", i%5))
		sb.WriteString(`\n`)
		sb.WriteString(string(rune('a' + i%26)))
		sb.WriteString(`":1`)
	}
	sb.WriteString(`}`)
	mp, err := jv(sb.String()).MessagePack()
	if err != nil {
		t.Fatal(err)
	}
	m, rest, err := msgp.ReadMapStrIntfBytes(mp, nil)
	if err != nil || len(rest) != 0 {
		t.Fatalf("msgp cannot read the conversion: %v, %d left", err, len(rest))
	}
	// Keys repeat (i%5, i%26 has period 130), so the map dedups them.
	if len(m) != 130 || mp[0] != 0xdf {
		t.Fatalf("got %d keys, header %x", len(m), mp[0])
	}
	big := `"` + strings.Repeat(`\u00e9`, 40000) + `"`
	mp, err = jv(big).MessagePack()
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := msgp.ReadStringBytes(mp)
	if err != nil || s != strings.Repeat("é", 40000) || mp[0] != 0xdb {
		t.Fatalf("long escaped string: %v, header %x", err, mp[0])
	}
}

func TestMessagePackToJSON(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.UTC)
	tests := []struct {
		msgpack []byte
		json    string
	}{
		{unhexT(t, "c0"), `null`},
		{unhexT(t, "c3"), `true`},
		{unhexT(t, "c2"), `false`},
		{unhexT(t, "e0"), `-32`},
		{unhexT(t, "cc ff"), `255`},
		{unhexT(t, "cd ffff"), `65535`},
		{unhexT(t, "ce ffffffff"), `4294967295`},
		{unhexT(t, "cf ffffffffffffffff"), `18446744073709551615`},
		{unhexT(t, "d0 80"), `-128`},
		{unhexT(t, "d1 8000"), `-32768`},
		{unhexT(t, "d2 80000000"), `-2147483648`},
		{unhexT(t, "d3 8000000000000000"), `-9223372036854775808`},
		{msgp.AppendFloat32(nil, 1.5), `1.5`},
		{msgp.AppendFloat32(nil, 0.1), `0.1`},
		{msgp.AppendFloat64(nil, 0.1), `0.1`},
		{msgp.AppendFloat64(nil, 1e21), `1e+21`},
		{msgp.AppendFloat64(nil, 1e-7), `1e-7`},
		{msgp.AppendFloat64(nil, 100), `100`},
		{msgp.AppendString(nil, "é\"\\\x00\x1e"), `"é\"\\\u0000\u001e"`},
		{msgp.AppendBytes(nil, []byte{0, 1, 2, 0xff}), `"AAEC/w=="`},
		{unhexT(t, "c4 00"), `""`},
		{unhexT(t, "93 01 90 80"), `[1,[],{}]`},
		{unhexT(t, "83 a161 01 01 a162 c3 a0"), `{"a":1,"1":"b","true":""}`},
		{unhexT(t, "82 c0 01 91 01 02"), `{"null":1,"[1]":2}`},
		{unhexT(t, "81 c4 01 ff 01"), `{"/w==":1}`},
		{msgp.AppendTimeExt(nil, ts), `"2024-05-06T07:08:09.123Z"`},
		{unhexT(t, "d6 ff 00000001"), `"1970-01-01T00:00:01Z"`},
		{unhexT(t, "c7 0c ff 00000001 0000000000000002"), `"1970-01-01T00:00:02.000000001Z"`},
		{unhexT(t, "dc 0002 01 02"), `[1,2]`},
		{unhexT(t, "de 0001 a161 01"), `{"a":1}`},
		{unhexT(t, "d9 01 61"), `"a"`},
		{unhexT(t, "da 0001 61"), `"a"`},
		{unhexT(t, "db 00000001 61"), `"a"`},
	}
	for _, tc := range tests {
		got, err := MessagePackValue(tc.msgpack).JSON()
		if err != nil {
			t.Errorf("% x: %v", tc.msgpack, err)
			continue
		}
		if string(got) != tc.json {
			t.Errorf("% x:\n got %s\nwant %s", tc.msgpack, got, tc.json)
		}
	}
}

func TestMessagePackToJSONErrors(t *testing.T) {
	tests := []struct {
		msgpack []byte
		want    string
	}{
		{msgp.AppendFloat64(nil, math.NaN()), "no JSON form"},
		{msgp.AppendFloat64(nil, math.Inf(1)), "no JSON form"},
		{msgp.AppendFloat32(nil, float32(math.Inf(-1))), "no JSON form"},
		{unhexT(t, "d4 05 00"), "extension type 5"},
		{unhexT(t, "d7 ff ffffffffffffffff"), "invalid timestamp"},
		{unhexT(t, "c1"), "valid type byte"},
		{unhexT(t, "92 01"), "unexpected end"},
		{unhexT(t, "01 02"), "trailing bytes"},
		{unhexT(t, "a3 61"), "payload"},
		{unhexT(t, "dd ffffffff"), "unexpected end"},
		{nil, "unexpected end"},
	}
	for _, tc := range tests {
		v := MessagePackValue(tc.msgpack)
		got, err := v.JSON()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("% x: %s, error %v, want %q", tc.msgpack, got, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("% x: error %v does not wrap ErrInvalidMessage", tc.msgpack, err)
		}
	}
}

func TestValueBasics(t *testing.T) {
	var zero Value
	if !zero.IsZero() {
		t.Error("zero Value not IsZero")
	}
	if b, err := zero.JSON(); err != nil || string(b) != "null" {
		t.Errorf("zero JSON %q %v", b, err)
	}
	if b, err := zero.MessagePack(); err != nil || !bytes.Equal(b, []byte{0xc0}) {
		t.Errorf("zero MessagePack % x %v", b, err)
	}
	v := jv(" \n{\"a\": [1, 2.5, \"x\"]}\t")
	if v.IsZero() || v.IsMessagePack() || v.String() != `{"a": [1, 2.5, "x"]}` {
		t.Errorf("trimmed JSON value %q", v.String())
	}
	var dst struct{ A []any }
	if err := v.Decode(&dst); err != nil || len(dst.A) != 3 || dst.A[1] != 2.5 {
		t.Errorf("Decode: %v %#v", err, dst)
	}
	mp, err := v.MessagePack()
	if err != nil {
		t.Fatal(err)
	}
	back := MessagePackValue(mp)
	if !back.IsMessagePack() || back.String() != `{"a":[1,2.5,"x"]}` {
		t.Errorf("round trip through MessagePack: %s", back)
	}
	var dst2 struct{ A []any }
	if err := back.Decode(&dst2); err != nil || dst2.A[2] != "x" {
		t.Errorf("Decode from MessagePack: %v %#v", err, dst2)
	}
	ov, err := ValueOf(map[string]int{"n": 3})
	if err != nil || ov.String() != `{"n":3}` {
		t.Errorf("ValueOf: %v %v", ov, err)
	}
	if _, err := ValueOf(make(chan int)); err == nil {
		t.Error("ValueOf(chan) succeeded")
	}
	if err := jv("{").Decode(&dst); err == nil {
		t.Error("Decode of invalid JSON succeeded")
	}
	if s := jv("").String(); !strings.Contains(s, "empty JSON value") {
		t.Errorf("empty JSON value: %s", s)
	}
	if err := jv(`"x"`).Decode(&dst); err == nil {
		t.Error("Decode of a string into a struct succeeded")
	}
}

func TestJSONEscapes(t *testing.T) {
	in := `"\b\f\n\r\t\"\\\/\u00E9\uD83D\uDE00\ud800x\udc00"`
	mp, err := jv(in).MessagePack()
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := msgp.ReadStringBytes(mp)
	if want := "\b\f\n\r\t\"\\/é😀\ufffdx\ufffd"; err != nil || s != want {
		t.Fatalf("got %q (%v), want %q", s, err, want)
	}
	back, err := MessagePackValue(mp).JSON()
	if want := `"\u0008\u000c\n\r\t\"\\/é😀�x�"`; err != nil || string(back) != want {
		t.Fatalf("back %s (%v), want %s", back, err, want)
	}
	m, err := JSON().ParseUnframed([]byte(`{"type":1,"target":"t","arguments":[],"streamIds":["a","\u0062"]}`))
	if err != nil || !reflect.DeepEqual(m.(*Invocation).StreamIDs, []string{"a", "b"}) {
		t.Fatalf("streamIds: %#v %v", m, err)
	}
	if _, err := JSON().ParseUnframed([]byte(`{"type":1,"target":"t","arguments":[],"streamIds":[1]}`)); err == nil {
		t.Fatal("numeric stream id accepted")
	}
}

func TestValueDepth(t *testing.T) {
	cases := map[string]int{
		`1`: 0, `null`: 0, `"[[["`: 0, `[]`: 1, `[1,[2]]`: 2, `{"a":{"b":[1]}}`: 3, `["\"[", [[]]]`: 3,
	}
	for in, want := range cases {
		got, err := JSONValue([]byte(in)).Depth()
		if err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", in, got, err, want)
		}
		mp, err := JSONValue([]byte(in)).MessagePack()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := MessagePackValue(mp).Depth(); err != nil || got != want {
			t.Errorf("%s as MessagePack: %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := JSONValue([]byte(`[1,`)).Depth(); err == nil {
		t.Error("invalid JSON: no error")
	}
}
