// Package protocol implements the ASP.NET Core SignalR hub protocol as spoken by
// Azure SignalR Service: the nine hub messages, their JSON (text) and MessagePack
// (binary) encodings, the transport framing (0x1E record separator for JSON, VarInt
// length prefix for MessagePack), the JSON handshake, and a streaming Decoder.
//
// Arguments and results are carried as Value, which keeps the bytes of the protocol
// that produced them and converts to the other protocol only when written there. A
// message broadcast from a JSON REST body to JSON clients is therefore relayed
// without re-encoding its arguments, and converted once for MessagePack clients.
// JSON objects become MessagePack maps with string keys, integers that fit int64
// become MessagePack integers and other numbers float64; in the other direction bin
// becomes a base64 string (as .NET does), timestamps RFC 3339 strings, non-string map
// keys their JSON text, and other extension types, NaN and infinities are errors.
//
// Encoding appends to a caller's buffer and does not allocate for the common case of
// an Invocation whose arguments are already in the target protocol. Decoded messages
// are pointers (*Invocation, ...) that own their memory: they never alias the bytes
// they were parsed from.
package protocol
