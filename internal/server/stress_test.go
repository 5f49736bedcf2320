package server

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/signalbox-io/signalbox/protocol"
)

// TestStressChurnAndDrain mixes transports and protocols, broadcasts from several
// goroutines while clients come and go, then drains: no race, no deadlock, no leak.
func TestStressChurnAndDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("stress")
	}
	ts := startServer(t, func(c *Config) { c.SendQueueFrames = 64 })
	var wg sync.WaitGroup
	stopClients := make(chan struct{})
	for i := 0; i < 16; i++ {
		p := protocol.JSON()
		if i%2 == 1 {
			p = protocol.MessagePack()
		}
		wc, _ := ts.connectWS("chat", "", p)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { <-stopClients; cancel() }()
			for n := 0; ; n++ {
				if _, _, err := wc.c.Read(ctx); err != nil {
					return
				}
				if i%4 == 0 && n == 20 { // some leave early, some stop reading
					wc.c.Close(websocket.StatusNormalClosure, "")
					return
				}
				if i%4 == 1 && n == 10 {
					<-ctx.Done()
					return
				}
			}
		}(i)
	}
	for i := 0; i < 4; i++ {
		n, _ := ts.startLongPolling("chat", "", protocol.JSON())
		tok := ts.token("chat", "")
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stopClients:
					return
				default:
				}
				req, _ := http.NewRequest("GET", ts.url+"/client/?hub=chat&id="+n.ConnectionToken, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return
				}
				if i == 0 && j == 5 {
					del, _ := http.NewRequest("DELETE", ts.url+"/client/?hub=chat&id="+n.ConnectionToken, nil)
					del.Header.Set("Authorization", "Bearer "+tok)
					if r, err := http.DefaultClient.Do(del); err == nil {
						r.Body.Close()
					}
				}
			}
		}(i)
	}
	var bwg sync.WaitGroup
	for g := 0; g < 4; g++ {
		bwg.Add(1)
		go func() {
			defer bwg.Done()
			for k := 0; k < 300; k++ {
				broadcast(ts.s, "chat", "m", "payload")
				if rand.IntN(50) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	bwg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.s.Shutdown(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	close(stopClients)
	wg.Wait()
	if n := ts.s.Stats().Connections; n != 0 {
		t.Fatalf("%d connections after the drain", n)
	}
}
