package main

import (
	"testing"

	"github.com/signalbox-io/signalbox/protocol"
)

func TestFormat(t *testing.T) {
	packed, err := protocol.JSONValue([]byte(`{"n":1}`)).MessagePack()
	if err != nil {
		t.Fatal(err)
	}
	m := &protocol.Invocation{Target: "newMessage", Arguments: []protocol.Value{
		protocol.JSONValue([]byte(`"hello"`)),
		protocol.MessagePackValue(packed), // a MessagePack client's argument prints as JSON too
	}}
	if got, want := format(m), `newMessage("hello", {"n":1})`; got != want {
		t.Fatalf("format = %s, want %s", got, want)
	}
	if got := format(&protocol.Invocation{Target: "ping"}); got != "ping()" {
		t.Fatalf("format without arguments = %s", got)
	}
}
