package cluster

import (
	"reflect"
	"testing"

	"github.com/signalbox-io/signalbox/protocol"
)

func TestCodecRoundTrip(t *testing.T) {
	msg := &Message{Kind: KindSendGroup, Hub: "chat", User: "u", Group: "g\x00:1", Conn: "c", Reason: "r",
		Excluded: []string{"x", ""}, Payload: jsonPayload("hi"), Expires: -5, NoTTL: true, Origin: "n1", Request: 42, OK: true}
	b, err := encodeMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []protocol.Protocol{protocol.JSON(), protocol.MessagePack()} {
		want, _ := msg.Payload.Frame(p)
		if f, err := got.Payload.Frame(p); err != nil || string(f) != string(want) {
			t.Fatalf("%s frame = %q, %v; want %q", p.Name(), f, err, want)
		}
	}
	got.Payload, msg.Payload = nil, nil
	if !reflect.DeepEqual(got, msg) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, msg)
	}
	for i := range b {
		if _, err := decodeMessage(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	b, _ := encodeMessage(&Message{Kind: KindSendAll, Hub: "h", Excluded: []string{"a"}, Payload: jsonPayload("t")})
	f.Add(b)
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := decodeMessage(data)
		if err != nil {
			return
		}
		// What decodes re-encodes to a message that decodes the same.
		again, err := encodeMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		msg2, err := decodeMessage(again)
		if err != nil {
			t.Fatal(err)
		}
		msg.Payload, msg2.Payload = nil, nil
		if !reflect.DeepEqual(msg, msg2) {
			t.Fatalf("%+v != %+v", msg, msg2)
		}
	})
}

// TestCodecGroupLimit: the refusal of a group add travels in an ack as a tail that
// only such an ack carries; every other message is encoded as before it existed.
func TestCodecGroupLimit(t *testing.T) {
	ack := &Message{Kind: KindAck, Request: 7, GroupLimit: 1000}
	b, err := encodeMessage(ack)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(b)
	if err != nil || !reflect.DeepEqual(got, ack) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for i := range b {
		if _, err := decodeMessage(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
	plain, _ := encodeMessage(&Message{Kind: KindAck, Request: 7, OK: true})
	// version, kind, six empty strings, request 7, expires 0, flags OK, no excluded, no frames
	if want := []byte{1, byte(KindAck), 0, 0, 0, 0, 0, 0, 7, 0, 1, 0, 0}; !reflect.DeepEqual(plain, want) {
		t.Fatalf("an ack without refusal changed encoding: %v, want %v", plain, want)
	}
}
