// Package transport holds the HTTP-level mechanics of the three SignalR transports
// (WebSockets, Server-Sent Events, long polling), the bounded outbound queue each
// connection writes through and the process-wide memory budget. It knows nothing
// about hubs, groups or the hub protocol: the server hands it opaque, already framed
// bytes.
//
// WebSockets are served without a goroutine or a buffer per idle connection: after
// the upgrade the socket is watched by an EventLoop (epoll on Linux), a short-lived
// goroutine reads what arrived into a pooled buffer and streams the unmasked payload
// to the connection, and frames are parsed incrementally (RFC 6455, server side, no
// extensions). Writes go out on the writer's goroutine, one write per batch.
package transport

// Kind is one of the three SignalR transports.
type Kind uint8

// The transports, numbered like the "asrs.s.htt" bitmask bits they correspond to.
const (
	None             Kind = 0
	WebSockets       Kind = 1
	ServerSentEvents Kind = 2
	LongPolling      Kind = 4
)

// String returns the transport name as it appears in negotiate responses.
func (k Kind) String() string {
	switch k {
	case WebSockets:
		return "WebSockets"
	case ServerSentEvents:
		return "ServerSentEvents"
	case LongPolling:
		return "LongPolling"
	}
	return "None"
}
