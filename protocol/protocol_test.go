package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func jv(s string) Value { return JSONValue([]byte(s)) }

func unhexT(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden holds one message per type with its exact unframed encoding in both protocols.
var golden = []struct {
	name    string
	msg     Message
	json    string
	msgpack string // hex
}{
	{"invocation non-blocking", &Invocation{Target: "send", Arguments: []Value{jv(`"hi"`)}},
		`{"type":1,"target":"send","arguments":["hi"]}`,
		"95 01 80 c0 a4 73656e64 91 a2 6869"},
	{"invocation full", &Invocation{Headers: map[string]string{"a": "b"}, InvocationID: "1", Target: "Echo",
		Arguments: []Value{jv(`1`), jv(`{"x":[true,null]}`)}, StreamIDs: []string{"s1"}},
		`{"type":1,"headers":{"a":"b"},"invocationId":"1","target":"Echo","arguments":[1,{"x":[true,null]}],"streamIds":["s1"]}`,
		"96 01 81 a161 a162 a131 a4 4563686f 92 01 81 a178 92 c3 c0 91 a2 7331"},
	{"invocation no args", &Invocation{InvocationID: "7", Target: "t"},
		`{"type":1,"invocationId":"7","target":"t","arguments":[]}`,
		"95 01 80 a137 a174 90"},
	{"stream item", &StreamItem{InvocationID: "1", Item: jv(`42`)},
		`{"type":2,"invocationId":"1","item":42}`,
		"94 02 80 a131 2a"},
	{"completion result", &Completion{InvocationID: "1", Result: jv(`"ok"`), HasResult: true},
		`{"type":3,"invocationId":"1","result":"ok"}`,
		"95 03 80 a131 03 a2 6f6b"},
	{"completion null result", &Completion{InvocationID: "1", Result: jv(`null`), HasResult: true},
		`{"type":3,"invocationId":"1","result":null}`,
		"95 03 80 a131 03 c0"},
	{"completion error", &Completion{InvocationID: "1", Error: "boom"},
		`{"type":3,"invocationId":"1","error":"boom"}`,
		"95 03 80 a131 01 a4 626f6f6d"},
	{"completion void", &Completion{InvocationID: "1"},
		`{"type":3,"invocationId":"1"}`,
		"94 03 80 a131 02"},
	{"stream invocation", &StreamInvocation{InvocationID: "2", Target: "Counter", Arguments: []Value{jv(`10`)}},
		`{"type":4,"invocationId":"2","target":"Counter","arguments":[10]}`,
		"95 04 80 a132 a7 436f756e746572 91 0a"},
	{"cancel", &CancelInvocation{InvocationID: "2"},
		`{"type":5,"invocationId":"2"}`,
		"93 05 80 a132"},
	{"ping", &Ping{}, `{"type":6}`, "91 06"},
	{"close", &Close{Error: "bye", AllowReconnect: true},
		`{"type":7,"error":"bye","allowReconnect":true}`,
		"93 07 a3 627965 c3"},
	{"close plain", &Close{}, `{"type":7}`, "93 07 c0 c2"},
	{"ack", &Ack{SequenceID: 5}, `{"type":8,"sequenceId":5}`, "92 08 05"},
	{"sequence", &Sequence{SequenceID: 1000}, `{"type":9,"sequenceId":1000}`, "92 09 d1 03e8"},
}

func TestGoldenEncode(t *testing.T) {
	for _, tc := range golden {
		t.Run(tc.name, func(t *testing.T) {
			got, err := JSON().AppendFrame(nil, tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.json + "\x1e"; string(got) != want {
				t.Errorf("JSON frame\n got %q\nwant %q", got, want)
			}
			got, err = MessagePack().AppendUnframed(nil, tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhexT(t, tc.msgpack); !bytes.Equal(got, want) {
				t.Errorf("MessagePack\n got % x\nwant % x", got, want)
			}
			framed, err := MessagePack().AppendFrame([]byte("prefix"), tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if want := append(AppendVarInt([]byte("prefix"), len(got)), got...); !bytes.Equal(framed, want) {
				t.Errorf("MessagePack frame\n got % x\nwant % x", framed, want)
			}
			// Value forms encode like pointers.
			v := reflect.ValueOf(tc.msg).Elem().Interface().(Message)
			if again, err := JSON().AppendUnframed(nil, v); err != nil || string(again) != tc.json {
				t.Errorf("value form: %q, %v", again, err)
			}
		})
	}
}

func TestGoldenDecode(t *testing.T) {
	for _, tc := range golden {
		t.Run(tc.name, func(t *testing.T) {
			m, err := JSON().ParseUnframed([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tc.msg) {
				t.Errorf("JSON decode\n got %#v\nwant %#v", m, tc.msg)
			}
			mp := unhexT(t, tc.msgpack)
			m, err = MessagePack().ParseUnframed(mp)
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() != tc.msg.Type() {
				t.Fatalf("type %v, want %v", m.Type(), tc.msg.Type())
			}
			// Same protocol: bytes unchanged. Other protocol: the golden JSON.
			if again, err := MessagePack().AppendUnframed(nil, m); err != nil || !bytes.Equal(again, mp) {
				t.Errorf("MessagePack re-encode % x, %v", again, err)
			}
			if js, err := JSON().AppendUnframed(nil, m); err != nil || string(js) != tc.json {
				t.Errorf("MessagePack -> JSON\n got %s (%v)\nwant %s", js, err, tc.json)
			}
		})
	}
}

func TestGoldenPingFrame(t *testing.T) {
	got, err := MessagePack().AppendFrame(nil, Ping{})
	if err != nil || !bytes.Equal(got, []byte{0x02, 0x91, 0x06}) {
		t.Fatalf("ping frame % x, %v", got, err)
	}
	got, err = JSON().AppendFrame(nil, &Ping{})
	if err != nil || string(got) != "{\"type\":6}\x1e" {
		t.Fatalf("ping frame %q, %v", got, err)
	}
}

func TestJSONDecodeVariants(t *testing.T) {
	tests := []struct {
		in   string
		want Message
	}{
		{` { "arguments" : [ 1 , "a" ] , "target":"t", "x":{"y":[1,2,{"z":null}]}, "type" : 1 } `,
			&Invocation{Target: "t", Arguments: []Value{jv(`1`), jv(`"a"`)}}},
		{`{"type":1,"invocationId":null,"target":"t","arguments":[],"headers":null,"streamIds":null}`,
			&Invocation{Target: "t"}},
		{`{"\u0074ype":1,"target":"t\u00e9\ud83d\ude00","arguments":[],"headers":{"k\n":"v\"","a":""}}`,
			&Invocation{Target: "té😀", Headers: map[string]string{"k\n": "v\"", "a": ""}}},
		{`{"type":3,"invocationId":"1","error":null,"result":{"a":1}}`,
			&Completion{InvocationID: "1", Result: jv(`{"a":1}`), HasResult: true}},
		{`{"type":3,"invocationId":"1","error":""}`, &Completion{InvocationID: "1"}},
		{`{"type":2,"invocationId":"1","item":null}`, &StreamItem{InvocationID: "1", Item: jv(`null`)}},
		{`{"type":7,"allowReconnect":false,"error":null}`, &Close{}},
		{`{"type":6,"headers":{},"unknown":[{}]}`, &Ping{}},
		{`{"type":42,"anything":"goes"}`, &Unknown{TypeID: 42}},
		{`{"type":0}`, &Unknown{TypeID: 0}},
		{`{"type":1,"target":"t","arguments":[],"Type":99}`, &Invocation{Target: "t"}},
	}
	for _, tc := range tests {
		m, err := JSON().ParseUnframed([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(m, tc.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tc.in, m, tc.want)
		}
	}
}

func TestJSONDecodeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "expected '{'"},
		{`[]`, "expected '{'"},
		{`{"target":"t"}`, "missing required property type"},
		{`{"type":"1"}`, "property type"},
		{`{"type":1.5}`, "expected an integer"},
		{`{"type":99999999999}`, "out of range"},
		{`{"type":1,"arguments":[]}`, "missing or empty target"},
		{`{"type":1,"target":"","arguments":[]}`, "missing or empty target"},
		{`{"type":1,"target":"t"}`, "missing arguments"},
		{`{"type":1,"target":"t","arguments":{}}`, "property arguments"},
		{`{"type":1,"target":"t","arguments":[1,]}`, "expected value"},
		{`{"type":1,"target":"t","arguments":[tru]}`, "expected true"},
		{`{"type":4,"target":"t","arguments":[]}`, "missing invocationId"},
		{`{"type":2,"invocationId":"1"}`, "missing item"},
		{`{"type":2,"item":1}`, "missing invocationId"},
		{`{"type":3,"invocationId":"1","result":1,"error":"x"}`, "both result and error"},
		{`{"type":3}`, "missing invocationId"},
		{`{"type":5}`, "missing invocationId"},
		{`{"type":8}`, "sequenceId"},
		{`{"type":9,"sequenceId":-1}`, "sequenceId"},
		{`{"type":1,"target":"t","arguments":[],"headers":{"a":1}}`, `header "a"`},
		{`{"type":6} x`, "trailing data"},
		{`{"type":6,}`, "expected string"},
		{`{"type":6,"a"}`, "expected ':'"},
		{`{"type":6,"a":"\x"}`, "escape character"},
		{"{\"type\":6,\"a\":\"\x01\"}", "control characters"},
		{"{\"type\":6,\"a\":\"\xff\"}", "invalid UTF-8"},
		{`{"type":6,"a":01}`, "expected ','"},
		{`{"type":6,"a":-}`, "expected digit"},
		{`{"type":6,"a":1.}`, "digit after decimal point"},
		{`{"type":6,"a":1e}`, "digit in exponent"},
		{`{"type":6,"a":"\u12"}`, "hex digit"},
		{`{"type":7,"allowReconnect":1}`, "boolean allowReconnect"},
		{`{"type":6,"a":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`, "nested deeper"},
		{`{"type":6`, "unexpected end"},
		{`{"type":`, "unexpected end"},
	}
	for _, tc := range tests {
		m, err := JSON().ParseUnframed([]byte(tc.in))
		if err == nil {
			t.Errorf("%q: no error, got %#v", tc.in, m)
			continue
		}
		if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %q, want ErrInvalidMessage containing %q", tc.in, err, tc.want)
		}
	}
}

func TestMessagePackDecodeVariants(t *testing.T) {
	tests := []struct {
		in   string
		want Message
	}{
		// Invocation with empty streamIds (6 elements) and nil headers.
		{"96 01 c0 c0 a174 91 01 90", &Invocation{Target: "t", Arguments: []Value{MessagePackValue([]byte{1})}}},
		// Close without allowReconnect, Ping with extra elements.
		{"92 07 a178", &Close{Error: "x"}},
		{"93 06 80 c0", &Ping{}},
		// Sequence id as uint64, extra trailing elements are skipped.
		{"93 08 cf 0000000000000010 a3 6e6577", &Ack{SequenceID: 16}},
		{"92 63 c0", &Unknown{TypeID: 99}},
		{"94 05 81 a16b a176 a131 c3", &CancelInvocation{InvocationID: "1", Headers: map[string]string{"k": "v"}}},
	}
	for _, tc := range tests {
		m, err := MessagePack().ParseUnframed(unhexT(t, tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(m, tc.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tc.in, m, tc.want)
		}
	}
}

func TestMessagePackDecodeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "not an array"},
		{"81 01 02", "not an array"},
		{"90", "missing type"},
		{"91 a131", "field type"},
		{"93 01 80 c0", "missing target"},
		{"95 01 80 c0 a0 90", "missing or empty target"},
		{"95 01 80 c0 01 90", "field target"},
		{"95 01 80 c0 a174 80", "field arguments"},
		{"95 01 80 c0 a174 92 01", "field argument"},
		{"95 01 80 c0 a174 91 c1", "field argument"},
		{"95 04 80 c0 a174 90", "field invocationId"},
		{"95 03 80 a131 04 c0", "invalid result kind"},
		{"94 03 80 a131 01", "missing error"},
		{"94 03 80 a131 03", "missing result"},
		{"93 02 80 a131", "missing item"},
		{"92 08 a131", "field sequenceId"},
		{"92 09 ff", "sequenceId"},
		{"93 07 c0 01", "field allowReconnect"},
		{"91 06 00", "trailing bytes"},
		{"92 06", "extra element"},
		{"95 01 81 a161 01 c0 a174 90", "header a"},
		{"94 02 80 a131 " + strings.Repeat("91", 600) + "c0", "nested deeper"},
	}
	for _, tc := range tests {
		m, err := MessagePack().ParseUnframed(unhexT(t, tc.in))
		if err == nil {
			t.Errorf("%s: no error, got %#v", tc.in, m)
			continue
		}
		if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want ErrInvalidMessage containing %q", tc.in, err, tc.want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		want string
	}{
		{"nil", nil, "nil message"},
		{"nil pointer", (*Invocation)(nil), "nil"},
		{"unknown", &Unknown{TypeID: 12}, "unknown type 12"},
		{"no target", &Invocation{}, "without a target"},
		{"both", &Completion{InvocationID: "1", Error: "e", HasResult: true}, "both a result and an error"},
		{"bad json arg", &Invocation{Target: "t", Arguments: []Value{jv(`{"a":`)}}, "argument 0"},
		{"trailing json arg", &Invocation{Target: "t", Arguments: []Value{jv(`1 2`)}}, "trailing data"},
		{"bad msgpack arg", &StreamItem{InvocationID: "1", Item: MessagePackValue([]byte{0x92, 0x01})}, "item"},
	}
	for _, tc := range tests {
		for _, p := range []Protocol{JSON(), MessagePack()} {
			dst := []byte("keep")
			got, err := p.AppendFrame(dst, tc.msg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s/%s: error %v, want %q", tc.name, p.Name(), err, tc.want)
			}
			if string(got) != "keep" {
				t.Errorf("%s/%s: dst changed to %q", tc.name, p.Name(), got)
			}
		}
	}
}

func TestEncodeEscapingAndHeaders(t *testing.T) {
	m := &Invocation{
		Headers:   map[string]string{"z": "1", "a": "2", "m": "3"},
		Target:    "t\x1e\"\\\n\xff<",
		Arguments: []Value{MessagePackValue(unhexT(t, "a3 611e62"))},
	}
	got, err := JSON().AppendFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":1,"headers":{"a":"2","m":"3","z":"1"},"target":"t\u001e\"\\\n\ufffd<","arguments":["a\u001eb"]}` + "\x1e"
	if string(got) != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if bytes.Count(got, []byte{0x1e}) != 1 {
		t.Fatal("record separator inside the message")
	}
	mp, err := MessagePack().AppendUnframed(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhexT(t, "95 01 83 a161 a132 a16d a133 a17a a131"); !bytes.HasPrefix(mp, want) {
		t.Fatalf("headers not sorted: % x", mp)
	}
}

func TestLookup(t *testing.T) {
	for _, name := range []string{"json", "messagepack"} {
		p, ok := Lookup(name)
		if !ok || p.Name() != name || p.Version() != 2 || p.Binary() != (name == "messagepack") {
			t.Errorf("Lookup(%q) = %v, %v", name, p, ok)
		}
	}
	for _, name := range []string{"JSON", "MessagePack", "", "blazorpack"} {
		if _, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) found a protocol", name)
		}
	}
}

func TestMessageType(t *testing.T) {
	if InvocationType.String() != "Invocation" || SequenceType.String() != "Sequence" || MessageType(12).String() != "MessageType(12)" {
		t.Error("String")
	}
	for mt := MessageType(0); mt <= 10; mt++ {
		if want := mt >= 1 && mt <= 5; mt.Trackable() != want {
			t.Errorf("%v.Trackable() = %v", mt, !want)
		}
	}
	if (Unknown{TypeID: 12}).Type() != 12 {
		t.Error("Unknown.Type")
	}
}
