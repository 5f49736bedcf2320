package protocol

import (
	"encoding/json"
	"errors"
)

// MessageType is the numeric "type" of a hub message.
type MessageType int

// Hub message types, numbered as on the wire.
const (
	InvocationType       MessageType = 1
	StreamItemType       MessageType = 2
	CompletionType       MessageType = 3
	StreamInvocationType MessageType = 4
	CancelInvocationType MessageType = 5
	PingType             MessageType = 6
	CloseType            MessageType = 7
	AckType              MessageType = 8
	SequenceType         MessageType = 9
)

// Message is one hub protocol message.
type Message interface{ Type() MessageType }

// Value is one argument or result.
type Value struct {
	raw     []byte
	msgpack bool
}

func JSONValue(raw []byte) Value        { return Value{raw: raw} }
func MessagePackValue(raw []byte) Value { return Value{raw: raw, msgpack: true} }
func ValueOf(v any) (Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Value{}, err
	}
	return JSONValue(b), nil
}
func (v Value) IsZero() bool                 { return len(v.raw) == 0 }
func (v Value) JSON() ([]byte, error)        { return v.raw, nil }
func (v Value) MessagePack() ([]byte, error) { return v.raw, nil }
func (v Value) Decode(dst any) error         { return json.Unmarshal(v.raw, dst) }

type Invocation struct {
	Headers      map[string]string
	InvocationID string
	Target       string
	Arguments    []Value
	StreamIDs    []string
}
type StreamInvocation struct {
	Headers      map[string]string
	InvocationID string
	Target       string
	Arguments    []Value
	StreamIDs    []string
}
type StreamItem struct {
	Headers      map[string]string
	InvocationID string
	Item         Value
}
type Completion struct {
	Headers      map[string]string
	InvocationID string
	Error        string
	Result       Value
	HasResult    bool
}
type CancelInvocation struct {
	Headers      map[string]string
	InvocationID string
}
type Ping struct{}
type Close struct {
	Error          string
	AllowReconnect bool
}
type Ack struct{ SequenceID int64 }
type Sequence struct{ SequenceID int64 }
type Unknown struct{ TypeID int }

func (*Invocation) Type() MessageType       { return InvocationType }
func (*StreamInvocation) Type() MessageType { return StreamInvocationType }
func (*StreamItem) Type() MessageType       { return StreamItemType }
func (*Completion) Type() MessageType       { return CompletionType }
func (*CancelInvocation) Type() MessageType { return CancelInvocationType }
func (*Ping) Type() MessageType             { return PingType }
func (*Close) Type() MessageType            { return CloseType }
func (*Ack) Type() MessageType              { return AckType }
func (*Sequence) Type() MessageType         { return SequenceType }
func (u *Unknown) Type() MessageType        { return MessageType(u.TypeID) }

type Protocol interface {
	Name() string
	Version() int
	Binary() bool
	AppendFrame(dst []byte, m Message) ([]byte, error)
	AppendUnframed(dst []byte, m Message) ([]byte, error)
	ParseUnframed(data []byte) (Message, error)
}

var errStub = errors.New("protocol: not implemented yet")

type stubProto struct {
	name   string
	binary bool
}

func (p stubProto) Name() string  { return p.name }
func (p stubProto) Version() int  { return 2 }
func (p stubProto) Binary() bool  { return p.binary }
func (p stubProto) AppendFrame(dst []byte, m Message) ([]byte, error) {
	return dst, errStub
}
func (p stubProto) AppendUnframed(dst []byte, m Message) ([]byte, error) {
	return dst, errStub
}
func (p stubProto) ParseUnframed(data []byte) (Message, error) { return nil, errStub }

func JSON() Protocol        { return stubProto{name: "json"} }
func MessagePack() Protocol { return stubProto{name: "messagepack", binary: true} }
func Lookup(name string) (Protocol, bool) {
	switch name {
	case "json":
		return JSON(), true
	case "messagepack":
		return MessagePack(), true
	}
	return nil, false
}

type Decoder struct {
	p   Protocol
	max int
	buf []byte
}

func NewDecoder(p Protocol, maxMessageSize int) *Decoder { return &Decoder{p: p, max: maxMessageSize} }
func (d *Decoder) Write(b []byte)                        { d.buf = append(d.buf, b...) }
func (d *Decoder) Next() (Message, error)                { return nil, errStub }

type HandshakeRequest struct {
	Protocol string
	Version  int
}

func ParseHandshakeRequest(data []byte) (req HandshakeRequest, rest []byte, err error) {
	return req, nil, errStub
}
func AppendHandshakeResponse(dst []byte, errText string) []byte {
	if errText == "" {
		return append(dst, "{}\x1e"...)
	}
	b, _ := json.Marshal(map[string]string{"error": errText})
	return append(append(dst, b...), 0x1e)
}
func ParseHandshakeResponse(data []byte) (errText string, rest []byte, err error) {
	return "", nil, errStub
}

var (
	ErrIncomplete      = errors.New("protocol: incomplete message")
	ErrMessageTooLarge = errors.New("protocol: message too large")
)
