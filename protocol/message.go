package protocol

import (
	"errors"
	"fmt"
	"strconv"
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

var typeNames = [...]string{"", "Invocation", "StreamItem", "Completion", "StreamInvocation",
	"CancelInvocation", "Ping", "Close", "Ack", "Sequence"}

// String returns the message name, e.g. "Invocation", or "MessageType(12)".
func (t MessageType) String() string {
	if t >= InvocationType && t <= SequenceType {
		return typeNames[t]
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// Trackable reports whether stateful reconnect numbers messages of this type
// (Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation).
func (t MessageType) Trackable() bool { return t >= InvocationType && t <= CancelInvocationType }

// Message is one hub protocol message. Both the struct types below and pointers to
// them implement it; Decoder and ParseUnframed return pointers (e.g. *Invocation).
type Message interface{ Type() MessageType }

// Invocation asks the receiver to call Target. Without InvocationID it is
// non-blocking: the receiver must not answer.
type Invocation struct {
	Headers      map[string]string
	InvocationID string
	Target       string
	Arguments    []Value
	StreamIDs    []string
}

// StreamInvocation starts a streaming call; InvocationID is required.
type StreamInvocation struct {
	Headers      map[string]string
	InvocationID string
	Target       string
	Arguments    []Value
	StreamIDs    []string
}

// StreamItem is one item of a stream.
type StreamItem struct {
	Headers      map[string]string
	InvocationID string
	Item         Value
}

// Completion ends an invocation: with an Error, with a Result (HasResult), or void.
// A zero Result with HasResult is written as null.
type Completion struct {
	Headers      map[string]string
	InvocationID string
	Error        string
	Result       Value
	HasResult    bool
}

// CancelInvocation cancels a stream.
type CancelInvocation struct {
	Headers      map[string]string
	InvocationID string
}

// Ping keeps the connection alive.
type Ping struct{}

// Close announces that the sender closes the connection.
type Close struct {
	Error          string
	AllowReconnect bool
}

// Ack acknowledges, for stateful reconnect, every message up to SequenceID.
type Ack struct{ SequenceID int64 }

// Sequence tells the peer, after a reconnect, the id of the next message sent.
type Sequence struct{ SequenceID int64 }

// Unknown is a message type this version does not know; receivers ignore it.
// It cannot be encoded.
type Unknown struct{ TypeID int }

// Type implements Message.
func (Invocation) Type() MessageType { return InvocationType }

// Type implements Message.
func (StreamInvocation) Type() MessageType { return StreamInvocationType }

// Type implements Message.
func (StreamItem) Type() MessageType { return StreamItemType }

// Type implements Message.
func (Completion) Type() MessageType { return CompletionType }

// Type implements Message.
func (CancelInvocation) Type() MessageType { return CancelInvocationType }

// Type implements Message.
func (Ping) Type() MessageType { return PingType }

// Type implements Message.
func (Close) Type() MessageType { return CloseType }

// Type implements Message.
func (Ack) Type() MessageType { return AckType }

// Type implements Message.
func (Sequence) Type() MessageType { return SequenceType }

// Type implements Message.
func (u Unknown) Type() MessageType { return MessageType(u.TypeID) }

var (
	// ErrIncomplete means more bytes are needed (handshake without its 0x1E yet).
	ErrIncomplete = errors.New("protocol: incomplete message")
	// ErrMessageTooLarge means a message exceeds the Decoder's maxMessageSize.
	ErrMessageTooLarge = errors.New("protocol: message too large")
	// ErrInvalidMessage is wrapped by every error about malformed input.
	ErrInvalidMessage = errors.New("protocol: invalid message")
)

// RecordSeparator terminates JSON messages and handshake messages.
const RecordSeparator = 0x1E

// maxDepth bounds the nesting of arguments so that conversion cannot exhaust the stack.
const maxDepth = 512

// fields is the union of every message's fields; encoders and decoders of both
// protocols work on it so that validation rules live in one place.
type fields struct {
	typ            MessageType
	headers        map[string]string
	id             string
	hasID          bool
	target         string
	args           []Value
	streamIDs      []string
	item           Value // item or result
	hasItem        bool  // item present / HasResult
	err            string
	hasErr         bool
	allowReconnect bool
	seq            int64
}

// flatten copies m into f. Both value and pointer forms are accepted; a pointer is
// never retained, so encoding does not allocate.
func flatten(m Message, f *fields) error {
	switch v := m.(type) {
	case *Invocation:
		if v != nil {
			flattenInvocation(InvocationType, v.Headers, v.InvocationID, v.Target, v.Arguments, v.StreamIDs, f)
			return nil
		}
	case Invocation:
		flattenInvocation(InvocationType, v.Headers, v.InvocationID, v.Target, v.Arguments, v.StreamIDs, f)
		return nil
	case *StreamInvocation:
		if v != nil {
			flattenInvocation(StreamInvocationType, v.Headers, v.InvocationID, v.Target, v.Arguments, v.StreamIDs, f)
			return nil
		}
	case StreamInvocation:
		flattenInvocation(StreamInvocationType, v.Headers, v.InvocationID, v.Target, v.Arguments, v.StreamIDs, f)
		return nil
	case *StreamItem:
		if v != nil {
			*f = fields{typ: StreamItemType, headers: v.Headers, id: v.InvocationID, hasID: true, item: v.Item, hasItem: true}
			return nil
		}
	case StreamItem:
		*f = fields{typ: StreamItemType, headers: v.Headers, id: v.InvocationID, hasID: true, item: v.Item, hasItem: true}
		return nil
	case *Completion:
		if v != nil {
			flattenCompletion(v, f)
			return nil
		}
	case Completion:
		flattenCompletion(&v, f)
		return nil
	case *CancelInvocation:
		if v != nil {
			*f = fields{typ: CancelInvocationType, headers: v.Headers, id: v.InvocationID, hasID: true}
			return nil
		}
	case CancelInvocation:
		*f = fields{typ: CancelInvocationType, headers: v.Headers, id: v.InvocationID, hasID: true}
		return nil
	case *Ping:
		if v != nil {
			*f = fields{typ: PingType}
			return nil
		}
	case Ping:
		*f = fields{typ: PingType}
		return nil
	case *Close:
		if v != nil {
			*f = fields{typ: CloseType, err: v.Error, hasErr: v.Error != "", allowReconnect: v.AllowReconnect}
			return nil
		}
	case Close:
		*f = fields{typ: CloseType, err: v.Error, hasErr: v.Error != "", allowReconnect: v.AllowReconnect}
		return nil
	case *Ack:
		if v != nil {
			*f = fields{typ: AckType, seq: v.SequenceID}
			return nil
		}
	case Ack:
		*f = fields{typ: AckType, seq: v.SequenceID}
		return nil
	case *Sequence:
		if v != nil {
			*f = fields{typ: SequenceType, seq: v.SequenceID}
			return nil
		}
	case Sequence:
		*f = fields{typ: SequenceType, seq: v.SequenceID}
		return nil
	case Unknown, *Unknown:
		return fmt.Errorf("protocol: cannot encode message of unknown type %d", m.Type())
	case nil:
		return errors.New("protocol: cannot encode a nil message")
	default:
		return fmt.Errorf("protocol: cannot encode message type %T", m)
	}
	return fmt.Errorf("protocol: cannot encode a nil %T", m)
}

func flattenInvocation(t MessageType, h map[string]string, id, target string, args []Value, streams []string, f *fields) {
	*f = fields{typ: t, headers: h, id: id, hasID: id != "" || t == StreamInvocationType,
		target: target, args: args, streamIDs: streams}
}

func flattenCompletion(c *Completion, f *fields) {
	*f = fields{typ: CompletionType, headers: c.Headers, id: c.InvocationID, hasID: true,
		item: c.Result, hasItem: c.HasResult, err: c.Error, hasErr: c.Error != ""}
}

// checkEncode rejects messages that no receiver would accept.
func (f *fields) checkEncode() error {
	switch f.typ {
	case InvocationType, StreamInvocationType:
		if f.target == "" {
			return fmt.Errorf("protocol: %v without a target", f.typ)
		}
	case CompletionType:
		if f.hasErr && f.hasItem {
			return errors.New("protocol: Completion with both a result and an error")
		}
	}
	return nil
}

// message builds the decoded message from f after checking the required fields.
func (f *fields) message() (Message, error) {
	switch f.typ {
	case InvocationType, StreamInvocationType:
		if f.target == "" {
			return nil, fmt.Errorf("%w: %v: missing or empty target", ErrInvalidMessage, f.typ)
		}
		if f.args == nil {
			return nil, fmt.Errorf("%w: %v: missing arguments", ErrInvalidMessage, f.typ)
		}
		if f.typ == StreamInvocationType && !f.hasID {
			return nil, fmt.Errorf("%w: %v: missing invocationId", ErrInvalidMessage, f.typ)
		}
		args := f.args
		if len(args) == 0 {
			args = nil
		}
		if f.typ == InvocationType {
			return &Invocation{Headers: f.headers, InvocationID: f.id, Target: f.target, Arguments: args, StreamIDs: f.streamIDs}, nil
		}
		return &StreamInvocation{Headers: f.headers, InvocationID: f.id, Target: f.target, Arguments: args, StreamIDs: f.streamIDs}, nil
	case StreamItemType:
		if !f.hasID {
			return nil, fmt.Errorf("%w: StreamItem: missing invocationId", ErrInvalidMessage)
		}
		if !f.hasItem {
			return nil, fmt.Errorf("%w: StreamItem: missing item", ErrInvalidMessage)
		}
		return &StreamItem{Headers: f.headers, InvocationID: f.id, Item: f.item}, nil
	case CompletionType:
		if !f.hasID {
			return nil, fmt.Errorf("%w: Completion: missing invocationId", ErrInvalidMessage)
		}
		if f.hasErr && f.hasItem {
			return nil, fmt.Errorf("%w: Completion: both result and error", ErrInvalidMessage)
		}
		return &Completion{Headers: f.headers, InvocationID: f.id, Error: f.err, Result: f.item, HasResult: f.hasItem}, nil
	case CancelInvocationType:
		if !f.hasID {
			return nil, fmt.Errorf("%w: CancelInvocation: missing invocationId", ErrInvalidMessage)
		}
		return &CancelInvocation{Headers: f.headers, InvocationID: f.id}, nil
	case PingType:
		return &Ping{}, nil
	case CloseType:
		return &Close{Error: f.err, AllowReconnect: f.allowReconnect}, nil
	case AckType, SequenceType:
		if f.seq < 0 {
			return nil, fmt.Errorf("%w: %v: missing or negative sequenceId", ErrInvalidMessage, f.typ)
		}
		if f.typ == AckType {
			return &Ack{SequenceID: f.seq}, nil
		}
		return &Sequence{SequenceID: f.seq}, nil
	}
	return &Unknown{TypeID: int(f.typ)}, nil
}
