// Command coder is a bare coder/websocket server, one reader goroutine per
// connection (CloseRead), broadcasts with Conn.Write one connection after the other.
package main

import (
	"context"
	"net/http"
	"os"

	"github.com/coder/websocket"

	"github.com/signalbox-io/signalbox/scripts/wscandidates/harness"
)

func main() {
	var conns harness.Conns[*websocket.Conn]
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		conns.Add(c)
		// One reader per connection, as a server must read (pings, close frames).
		<-c.CloseRead(context.Background()).Done()
		conns.Remove(c)
	})
	harness.Control(os.Args[2], conns.Len, func(msg []byte) int {
		n := 0
		for _, c := range conns.List() {
			if c.Write(context.Background(), websocket.MessageText, msg) == nil {
				n++
			}
		}
		return n
	})
	if err := http.ListenAndServe(os.Args[1], mux); err != nil {
		panic(err)
	}
}
