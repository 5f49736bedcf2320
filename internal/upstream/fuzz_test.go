package upstream

import (
	"testing"

	"github.com/signalbox-io/signalbox/protocol"
)

// FuzzRelayable feeds arbitrary upstream response bodies to the check that decides what
// reaches the client: it must never panic, and whatever it accepts must be exactly one
// Completion frame carrying the client's invocation id.
func FuzzRelayable(f *testing.F) {
	seeds := []string{
		"{\"type\":3,\"invocationId\":\"1\",\"result\":1}\x1e",
		"{\"type\":3,\"invocationId\":\"2\"}\x1e",
		"{\"type\":3,\"invocationId\":\"1\"}",
		"{\"type\":6}\x1e",
		"{\"type\":3}\x1e{\"type\":3}\x1e",
		"{\"type\":3,\"invocationId\":\"1\"}\x1e{\"ty",
		"\x05\x94\x03\x80\xa11\x01",
		"\x06\x95\x03\x80\xa11\x03\x01",
		"\xff\xff\xff\xff\x0f",
		"{\"result\":A0", // once panicked the JSON parser
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, binary bool) {
		p := protocol.JSON()
		if binary {
			p = protocol.MessagePack()
		}
		s := &Session{proto: p}
		frame, err := s.relayable(body, "1")
		if err != nil {
			return
		}
		d := protocol.NewDecoder(p, len(frame)+16)
		d.Write(frame)
		m, err := d.Next()
		if err != nil {
			t.Fatalf("accepted %q but the relayed frame %q does not decode: %v", body, frame, err)
		}
		c, ok := m.(*protocol.Completion)
		if !ok || c.InvocationID != "1" {
			t.Fatalf("accepted %q, relayed %#v", body, m)
		}
		if extra, err := d.Next(); extra != nil || err != nil {
			t.Fatalf("relayed frame %q holds more than one message", frame)
		}
	})
}
