//go:build goexperiment.jsonv2

package protocol

// The hand-written scanner (jsonscan.go) measured against jsontext, the tokenizer of
// encoding/json v2, doing the same job: split an invocation into its properties with the
// arguments kept as raw values. Run with GOEXPERIMENT=jsonv2 (docs/dependencies.md has
// the figures).

import (
	"bytes"
	"encoding/json/jsontext"
	"testing"
)

var scanBenchInvocation = []byte(`{"type":1,"invocationId":"123","target":"broadcast","arguments":["hello world, this is a chat message",{"a":[1,2,3],"b":"x"},42]}`)

var sink Message

func BenchmarkInvocationHandWritten(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m, err := parseJSONMessage(scanBenchInvocation)
		if err != nil {
			b.Fatal(err)
		}
		sink = m
	}
}

// parseWithJSONText is the same split done with jsontext: names unescaped, arguments
// raw, duplicate names rejected (jsontext does that by default).
func parseWithJSONText(dec *jsontext.Decoder, r *bytes.Reader, d []byte, args [][]byte) (typ int64, id, target string, _ [][]byte, err error) {
	r.Reset(d)
	dec.Reset(r)
	if _, err = dec.ReadToken(); err != nil { // {
		return
	}
	for dec.PeekKind() != '}' {
		var name jsontext.Token
		if name, err = dec.ReadToken(); err != nil {
			return
		}
		switch name.String() {
		case "type":
			var tok jsontext.Token
			if tok, err = dec.ReadToken(); err != nil {
				return
			}
			typ = tok.Int()
		case "invocationId":
			var tok jsontext.Token
			if tok, err = dec.ReadToken(); err != nil {
				return
			}
			id = tok.String()
		case "target":
			var tok jsontext.Token
			if tok, err = dec.ReadToken(); err != nil {
				return
			}
			target = tok.String()
		case "arguments":
			if _, err = dec.ReadToken(); err != nil { // [
				return
			}
			for dec.PeekKind() != ']' {
				var v jsontext.Value
				if v, err = dec.ReadValue(); err != nil {
					return
				}
				args = append(args, v)
			}
			if _, err = dec.ReadToken(); err != nil { // ]
				return
			}
		default:
			if err = dec.SkipValue(); err != nil {
				return
			}
		}
	}
	_, err = dec.ReadToken()
	return typ, id, target, args, err
}

func BenchmarkInvocationJSONText(b *testing.B) {
	b.ReportAllocs()
	r := bytes.NewReader(nil)
	dec := jsontext.NewDecoder(r)
	args := make([][]byte, 0, 8)
	for b.Loop() {
		_, id, target, a, err := parseWithJSONText(dec, r, scanBenchInvocation, args[:0])
		if err != nil || target != "broadcast" || len(a) != 3 {
			b.Fatal(err, target, len(a))
		}
		// The same result as parseJSONMessage: an *Invocation with raw argument values
		// pointing into the input.
		inv := &Invocation{InvocationID: id, Target: target, Arguments: make([]Value, len(a))}
		for i, v := range a {
			inv.Arguments[i] = Value{raw: v, kind: kindJSON}
		}
		sink = inv
	}
}
