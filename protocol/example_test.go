package protocol_test

import (
	"fmt"

	"github.com/signalbox-io/signalbox/protocol"
)

// A broadcast built from a JSON REST body, written for a JSON and a MessagePack client.
func Example() {
	msg := &protocol.Invocation{
		Target:    "send",
		Arguments: []protocol.Value{protocol.JSONValue([]byte(`"hi"`))},
	}
	text, _ := protocol.JSON().AppendFrame(nil, msg)
	fmt.Printf("%q\n", text)
	bin, _ := protocol.MessagePack().AppendFrame(nil, msg)
	fmt.Printf("% x\n", bin)
	// Output:
	// "{\"type\":1,\"target\":\"send\",\"arguments\":[\"hi\"]}\x1e"
	// 0d 95 01 80 c0 a4 73 65 6e 64 91 a2 68 69
}

func ExampleMessagePack() {
	ping, _ := protocol.MessagePack().AppendFrame(nil, protocol.Ping{})
	fmt.Printf("% x\n", ping)
	// Output: 02 91 06
}

func ExampleLookup() {
	p, ok := protocol.Lookup("messagepack")
	fmt.Println(p.Name(), p.Version(), p.Binary(), ok)
	_, ok = protocol.Lookup("MessagePack")
	fmt.Println(ok)
	// Output:
	// messagepack 2 true true
	// false
}

// The server side of a connection: handshake first, then messages, which may arrive
// split or batched in any way.
func ExampleDecoder() {
	first := []byte("{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":6}\x1e{\"type\":1,\"tar")
	req, rest, err := protocol.ParseHandshakeRequest(first)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := protocol.Lookup(req.Protocol)
	d := protocol.NewDecoder(p, 32*1024)
	d.Write(rest)
	d.Write([]byte("get\":\"echo\",\"invocationId\":\"1\",\"arguments\":[42]}\x1e"))
	for {
		m, err := d.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		if m == nil {
			break // wait for more bytes
		}
		switch m := m.(type) {
		case *protocol.Ping:
			fmt.Println("ping")
		case *protocol.Invocation:
			fmt.Println("invoke", m.Target, m.InvocationID, m.Arguments)
		}
	}
	fmt.Printf("%q\n", protocol.AppendHandshakeResponse(nil, ""))
	// Output:
	// ping
	// invoke echo 1 [42]
	// "{}\x1e"
}

func ExampleParseHandshakeRequest() {
	req, rest, err := protocol.ParseHandshakeRequest([]byte("{\"protocol\":\"messagepack\",\"version\":2}\x1e\x02\x91\x06"))
	fmt.Println(req.Protocol, req.Version, err)
	fmt.Printf("% x\n", rest)
	_, _, err = protocol.ParseHandshakeRequest([]byte(`{"protocol":`))
	fmt.Println(err == protocol.ErrIncomplete)
	// Output:
	// messagepack 2 <nil>
	// 02 91 06
	// true
}

func ExampleParseHandshakeResponse() {
	errText, _, err := protocol.ParseHandshakeResponse(protocol.AppendHandshakeResponse(nil, "The protocol 'x' is not supported."))
	fmt.Println(errText, err)
	// Output: The protocol 'x' is not supported. <nil>
}

// Values convert lazily between protocols.
func ExampleValue() {
	v := protocol.JSONValue([]byte(`{"user":"alice","scores":[1,2.5]}`))
	mp, _ := v.MessagePack()
	fmt.Printf("% x\n", mp)
	back, _ := protocol.MessagePackValue(mp).JSON()
	fmt.Println(string(back))
	// Output:
	// 82 a4 75 73 65 72 a5 61 6c 69 63 65 a6 73 63 6f 72 65 73 92 01 cb 40 04 00 00 00 00 00 00
	// {"user":"alice","scores":[1,2.5]}
}

func ExampleValue_Decode() {
	// A MessagePack argument decoded into a Go value (through JSON).
	v := protocol.MessagePackValue([]byte{0x82, 0xa1, 'n', 0x03, 0xa1, 'b', 0xc4, 0x02, 0x01, 0x02})
	var dst struct {
		N int
		B []byte
	}
	err := v.Decode(&dst)
	fmt.Println(dst.N, dst.B, err)
	// Output: 3 [1 2] <nil>
}

func ExampleValueOf() {
	v, _ := protocol.ValueOf(map[string]any{"ok": true})
	frame, _ := protocol.JSON().AppendUnframed(nil, &protocol.Completion{InvocationID: "7", Result: v, HasResult: true})
	fmt.Println(string(frame))
	// Output: {"type":3,"invocationId":"7","result":{"ok":true}}
}

// Upstream response bodies are unframed.
func ExampleProtocol_ParseUnframed() {
	m, err := protocol.JSON().ParseUnframed([]byte(`{"type":3,"invocationId":"1","result":"done"}`))
	c := m.(*protocol.Completion)
	fmt.Println(c.InvocationID, c.HasResult, c.Result, err)
	// Output: 1 true "done" <nil>
}
