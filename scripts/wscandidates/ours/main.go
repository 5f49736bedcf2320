// Command ours is Signalbox's own WebSocket transport (internal/transport) with no
// SignalR above it: accepted through internal/rawtcp as the server does, read by the
// epoll event loop, written with TryWriteFramed (one send(2) each) or, with the
// third argument "gathered", through a transport.SendBatch (io_uring).
package main

import (
	"net"
	"net/http"
	"os"

	"github.com/signalbox-io/signalbox/internal/rawtcp"
	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/scripts/wscandidates/harness"
)

type nop struct{ closed func() }

func (nop) Data([]byte, bool) error { return nil }
func (n nop) Closed(error)          { n.closed() }

func main() {
	var loop transport.EventLoop
	var conns harness.Conns[*transport.WebSocket]
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		var ws *transport.WebSocket
		h := nop{closed: func() { conns.Remove(ws) }}
		c, err := loop.Accept(w, r, h)
		if err != nil {
			return
		}
		ws = c
		conns.Add(ws)
		ws.Start()
	})
	var sb *transport.SendBatch
	if len(os.Args) > 3 && os.Args[3] == "gathered" {
		var err error
		if sb, err = transport.NewSendBatch(); err != nil {
			panic(err)
		}
	}
	buf := make([]byte, transport.Headroom, transport.Headroom+100)
	harness.Control(os.Args[2], conns.Len, func(msg []byte) int {
		list := conns.List()
		// Every write frames the same header into b: one buffer serves them all.
		b := append(buf[:transport.Headroom], msg...)
		if sb != nil {
			d := &counter{}
			for _, c := range list {
				_, _, _ = c.QueueWriteFramed(sb, b, false, d)
			}
			sb.Submit()
			return d.n
		}
		n := 0
		for _, c := range list {
			if rest, err := c.TryWriteFramed(b, false); err == nil && len(rest) == 0 {
				n++
			}
		}
		return n
	})
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		panic(err)
	}
	_ = http.Serve(rawtcp.Listener(ln), mux)
}

// counter counts the gathered writes the sockets took whole.
type counter struct{ n int }

func (c *counter) WriteDone(_ *transport.WebSocket, _, rest []byte, err error) {
	if err == nil && len(rest) == 0 {
		c.n++
	}
}
