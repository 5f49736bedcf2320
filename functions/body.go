package functions

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/signalbox-io/signalbox/protocol"
	"github.com/tinylib/msgp/msgp"
)

// parseDisconnect reads the close reason of a disconnected event: JSON
// {"type":11,"error":"…"} (names case-insensitive). The extension parses MessagePack only for
// invocations; a MessagePack body here is read best-effort ([11, {headers}?, error]) and never
// fails. An empty body means no error.
func parseDisconnect(proto protocol.Protocol, body []byte) (string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	if proto.Binary() {
		return msgpackCloseError(body), nil
	}
	var m struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "", fmt.Errorf("functions: disconnected body: %w", err)
	}
	if m.Error == nil {
		return "", nil
	}
	return *m.Error, nil
}

func msgpackCloseError(b []byte) string {
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil || n < 2 {
		return ""
	}
	if b, err = msgp.Skip(b); err != nil { // type
		return ""
	}
	for i := uint32(1); i < n; i++ {
		switch msgp.NextType(b) {
		case msgp.StrType:
			s, _, err := msgp.ReadStringBytes(b)
			if err != nil {
				return ""
			}
			return s
		case msgp.NilType:
			return ""
		}
		if b, err = msgp.Skip(b); err != nil {
			return ""
		}
	}
	return ""
}

// resultValue turns a handler's result into a protocol value: nil is JSON null,
// protocol.Value and json.RawMessage pass through, anything else is marshalled with
// encoding/json.
func resultValue(result any) (protocol.Value, error) {
	switch v := result.(type) {
	case nil:
		return protocol.JSONValue([]byte("null")), nil
	case protocol.Value:
		if v.IsZero() {
			return protocol.JSONValue([]byte("null")), nil
		}
		return v, nil
	case json.RawMessage:
		if len(v) == 0 {
			return protocol.JSONValue([]byte("null")), nil
		}
		return protocol.JSONValue(v), nil
	}
	v, err := protocol.ValueOf(result)
	if err != nil {
		return protocol.Value{}, fmt.Errorf("functions: result: %w", err)
	}
	return v, nil
}

// parseInvocationBody reads an unframed invocation. JSON bodies that the strict hub-protocol
// parser rejects are read once more the way the extension reads them: property names
// case-insensitive, missing arguments meaning none.
func parseInvocationBody(proto protocol.Protocol, body []byte) (*protocol.Invocation, error) {
	m, err := proto.ParseUnframed(body)
	if err == nil {
		if inv, ok := m.(*protocol.Invocation); ok {
			return inv, nil
		}
		return nil, fmt.Errorf("functions: message type %d is not an invocation", m.Type())
	}
	if proto.Binary() {
		return nil, err
	}
	var w struct {
		Type         *int              `json:"type"`
		InvocationID *string           `json:"invocationId"`
		Target       string            `json:"target"`
		Arguments    []json.RawMessage `json:"arguments"`
		Headers      map[string]string `json:"headers"`
	}
	if jerr := json.Unmarshal(bytes.TrimSuffix(body, []byte{0x1e}), &w); jerr != nil || w.Type == nil || *w.Type != int(protocol.InvocationType) || w.Target == "" {
		return nil, err
	}
	inv := &protocol.Invocation{Target: w.Target, Headers: w.Headers, Arguments: make([]protocol.Value, len(w.Arguments))}
	if w.InvocationID != nil {
		inv.InvocationID = *w.InvocationID
	}
	for i, a := range w.Arguments {
		inv.Arguments[i] = protocol.JSONValue(a)
	}
	return inv, nil
}
