package restapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/protocol"
)

// FuzzPayloadBody feeds both body parsers: binary=false is the JSON
// PayloadMessage, binary=true the octet-stream map of pre-framed messages.
// Accepted bodies must yield a usable payload; rejected ones an apiError.
func FuzzPayloadBody(f *testing.F) {
	jsonFrame, _ := protocol.JSON().AppendFrame(nil, &protocol.Invocation{Target: "t", Arguments: []protocol.Value{protocol.JSONValue([]byte(`1`))}})
	mpFrame, _ := protocol.MessagePack().AppendFrame(nil, &protocol.Invocation{Target: "t"})
	octet := msgp.AppendMapHeader(nil, 2)
	octet = msgp.AppendString(octet, "json")
	octet = msgp.AppendBytes(octet, jsonFrame)
	octet = msgp.AppendString(octet, "messagepack")
	octet = msgp.AppendBytes(octet, mpFrame)
	for _, seed := range []string{
		`{"target":"t","arguments":["a",1,{"b":[true,null]}]}`,
		`{"Target":"T","Arguments":[]}`,
		`{"target":"t","arguments":null}`,
		`{"TARGET":"x","arguments":[1e400]}`,
		`{"target":""}`,
		`[1,2]`,
		`{"target":"t","arguments":[`,
		"\x00",
	} {
		f.Add([]byte(seed), false)
	}
	f.Add(octet, true)
	f.Add(octet[:len(octet)-3], true)
	f.Add([]byte{0x81, 0xa4, 'j', 's', 'o', 'n', 0xc4, 0x02, '{', 0x1e}, true)
	f.Add([]byte{0x81, 0xab, 'm', 'e', 's', 's', 'a', 'g', 'e', 'p', 'a', 'c', 'k', 0xc4, 0x02, 0x01, 0x90}, true)
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}, true)

	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		var p *hub.Payload
		var err error
		if binary {
			var frames map[string][]byte
			frames, err = parseFramesPayload(data)
			if err == nil {
				if len(frames) == 0 {
					t.Fatal("accepted a body without frames")
				}
				for name, fr := range frames {
					if cerr := checkFrame(name, fr); cerr != nil {
						t.Fatalf("accepted a bad %s frame: %v", name, cerr)
					}
				}
				p = hub.PayloadFromFrames(frames)
			}
		} else {
			var inv *protocol.Invocation
			inv, err = parseJSONPayload(data)
			if err == nil {
				if inv.Target == "" {
					t.Fatal("accepted an empty target")
				}
				p = hub.NewPayload(inv)
			}
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || errorTable[ae.kind].status != 400 {
				t.Fatalf("rejection is not a 400 apiError: %v", err)
			}
			return
		}
		// Framing in either protocol may fail for odd values but must not panic.
		_, _ = p.Frame(protocol.JSON())
		_, _ = p.Frame(protocol.MessagePack())
	})
}

// FuzzScanPayload checks the PayloadMessage fast path against encoding/json: whatever
// scanPayload accepts, json.Unmarshal accepts with the same target and arguments.
func FuzzScanPayload(f *testing.F) {
	for _, seed := range []string{
		`{"target":"t","arguments":["a",1,{"b":[true,null]}]}`,
		` { "Target" : "T" , "Arguments" : [ ] } `,
		`{"target":"t","arguments":null,"x":{"target":1}}`,
		`{"TARGET":"x","arguments":[1e400, null ,"\u00e9"]}`,
		`{"target":"a","target":"b","arguments":[1],"arguments":[2,3]}`,
		`{"target":"a","target":null}`,
		`{"target":"\u0074"}`,
		`{"t\u0061rget":"x"}`,
		`{"argumentſ":[1],"target":"x"}`,
		"{\"target\":\"\xff\"}",
		`{"target":1}`,
		`{"arguments":{}}`,
		`null`,
		`[]`,
		`{"target":"t","arguments":[`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := scanPayload(data)
		if !ok {
			return
		}
		var want payloadMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("scanPayload accepted %q, json.Unmarshal: %v", data, err)
		}
		if (got.Target == nil) != (want.Target == nil) || (got.Target != nil && *got.Target != *want.Target) {
			t.Fatalf("%q: target %v, json.Unmarshal %v", data, deref(got.Target), deref(want.Target))
		}
		if len(got.Arguments) != len(want.Arguments) {
			t.Fatalf("%q: %d arguments, json.Unmarshal %d", data, len(got.Arguments), len(want.Arguments))
		}
		for i := range got.Arguments {
			if !bytes.Equal(got.Arguments[i], want.Arguments[i]) {
				t.Fatalf("%q: argument %d %q, json.Unmarshal %q", data, i, got.Arguments[i], want.Arguments[i])
			}
		}
	})
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
