// Package protocol implements the ASP.NET Core SignalR hub protocol as spoken by
// Azure SignalR Service: the nine hub messages, their JSON (text) and MessagePack
// (binary) encodings, the transport framing (0x1E record separator for JSON, VarInt
// length prefix for MessagePack), the JSON handshake, and a streaming Decoder.
//
// Arguments and results are carried as Value, which keeps the bytes of the protocol
// that produced them and converts to the other protocol only when asked. A message
// broadcast from a JSON REST body to JSON clients is therefore relayed without
// re-encoding its arguments, and converted once for MessagePack clients.
package protocol
