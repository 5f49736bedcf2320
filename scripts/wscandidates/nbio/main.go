// Command nbio is a bare lesismal/nbio WebSocket server (nbhttp with its upgrader):
// connections on /ws, nothing read but what nbio reads itself, broadcasts with
// Conn.WriteMessage one connection after the other.
package main

import (
	"net/http"
	"os"

	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/signalbox-io/signalbox/scripts/wscandidates/harness"
)

func main() {
	var conns harness.Conns[*websocket.Conn]
	up := websocket.NewUpgrader()
	up.OnMessage(func(*websocket.Conn, websocket.MessageType, []byte) {})
	up.OnClose(func(c *websocket.Conn, _ error) { conns.Remove(c) })
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			conns.Add(c)
		}
	})
	engine := nbhttp.NewEngine(nbhttp.Config{Network: "tcp", Addrs: []string{os.Args[1]}, Handler: mux})
	if err := engine.Start(); err != nil {
		panic(err)
	}
	harness.Control(os.Args[2], conns.Len, func(msg []byte) int {
		n := 0
		for _, c := range conns.List() {
			if c.WriteMessage(websocket.TextMessage, msg) == nil {
				n++
			}
		}
		return n
	})
	select {}
}
