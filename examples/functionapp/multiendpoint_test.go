package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/internal/server"
	"github.com/signalbox-io/signalbox/management"
	"github.com/signalbox-io/signalbox/protocol"
)

// startSignalbox serves an in-process Signalbox on addr ("127.0.0.1:0" for any port).
func startSignalbox(t *testing.T, addr, key string) (*server.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Default()
	cfg.Listen = ln.Addr().String()
	cfg.PublicURL = "http://" + ln.Addr().String()
	cfg.AccessKeys = server.StringList{key}
	sb, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sb.Serve(ln) }()
	t.Cleanup(func() { stopSignalbox(sb) })
	return sb, cfg.PublicURL
}

func stopSignalbox(sb *server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = sb.Shutdown(ctx)
}

// TestTwoSignalboxEndpoints: one primary and one secondary Signalbox behind one app. Messages
// reach the clients of both; negotiate moves to the secondary while the primary is stopped
// and back when it returns.
func TestTwoSignalboxEndpoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const keyP, keyS = "primary-key-0123456789", "secondary-key-0123456789"
	sbP, urlP := startSignalbox(t, "127.0.0.1:0", keyP)
	_, urlS := startSignalbox(t, "127.0.0.1:0", keyS)

	svc, err := functions.NewFromMap(map[string]string{
		"Azure__SignalR__Endpoints__east":            "Endpoint=" + urlP + ";AccessKey=" + keyP + ";Version=1.0;",
		"Azure__SignalR__Endpoints__west__secondary": "Endpoint=" + urlS + ";AccessKey=" + keyS + ";Version=1.0;",
	}, &functions.Options{Client: &management.ClientOptions{Health: management.HealthOptions{Retries: -1, Timeout: 2 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	handler, err := newApp(svc, slog.New(slog.DiscardHandler), appOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(handler)
	defer app.Close()

	negotiateURL := func() string {
		t.Helper()
		res, err := http.Post(app.URL+"/api/negotiate", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var info functions.ConnectionInfo
		if err := json.NewDecoder(res.Body).Decode(&info); err != nil {
			t.Fatalf("negotiate: %d %v", res.StatusCode, err)
		}
		return info.URL
	}
	svc.Client().CheckHealth(ctx)
	if u := negotiateURL(); !strings.HasPrefix(u, urlP) {
		t.Fatalf("negotiate with both online = %s, want the primary %s", u, urlP)
	}

	// One client on each endpoint; the secondary's through signalRNegotiation.
	onP := dialHub(ctx, t, app.URL, "p-user", protocol.JSON())
	n, err := svc.Negotiation(ctx, hubName, &functions.ConnectionInfoOptions{UserID: "s-user"})
	if err != nil {
		t.Fatal(err)
	}
	var onS *hubClient
	for _, e := range n.Endpoints {
		if e.Name == "west" {
			onS = dialInfo(ctx, t, e.ConnectionInfo, protocol.MessagePack())
		}
	}
	if onS == nil {
		t.Fatalf("negotiation lacks the secondary: %+v", n)
	}
	if err := svc.Send(ctx, hubName, functions.Message{Target: "newMessage", Arguments: []any{"to both"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*hubClient{onP, onS} {
		inv, ok := c.next(ctx, t).(*protocol.Invocation)
		if !ok || inv.Target != "newMessage" {
			t.Fatalf("%s client: got %#v", c.proto.Name(), inv)
		}
	}

	// Stop the primary: negotiate moves to the secondary.
	addrP := strings.TrimPrefix(urlP, "http://")
	onP.ws.CloseNow() // a client that does not read would hold up the drain
	stopSignalbox(sbP)
	svc.Client().CheckHealth(ctx)
	if u := negotiateURL(); !strings.HasPrefix(u, urlS) {
		t.Fatalf("negotiate with the primary down = %s, want the secondary %s", u, urlS)
	}
	// Bring it back on the same address: negotiate returns to it.
	startSignalbox(t, addrP, keyP)
	svc.Client().CheckHealth(ctx)
	if u := negotiateURL(); !strings.HasPrefix(u, urlP) {
		t.Fatalf("negotiate after the primary returned = %s, want %s", u, urlP)
	}
}
