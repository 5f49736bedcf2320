package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/internal/server"
	"github.com/signalbox-io/signalbox/protocol"
)

// eventLog is a slog handler that hands every record's message and attributes to a channel,
// so the test can wait for "connected"/"disconnected" without polling.
type eventLog struct{ ch chan string }

func (e eventLog) Enabled(context.Context, slog.Level) bool { return true }
func (e eventLog) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e eventLog) WithGroup(string) slog.Handler            { return e }
func (e eventLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	select {
	case e.ch <- b.String():
	default: // never block the app on a slow test
	}
	return nil
}

func (e eventLog) wait(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-e.ch:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no log line %q", prefix)
		}
	}
}

// hubClient is a minimal SignalR client over WebSockets.
type hubClient struct {
	ws    *websocket.Conn
	proto protocol.Protocol
	dec   *protocol.Decoder
}

func dialHub(ctx context.Context, t *testing.T, appBase, user string, proto protocol.Protocol) *hubClient {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, appBase+"/api/negotiate", nil)
	req.Header.Set("x-ms-client-principal-id", user)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info functions.ConnectionInfo
	err = json.NewDecoder(res.Body).Decode(&info)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("negotiate: %d %v", res.StatusCode, err)
	}
	return dialInfo(ctx, t, info, proto)
}

func dialInfo(ctx context.Context, t *testing.T, info functions.ConnectionInfo, proto protocol.Protocol) *hubClient {
	t.Helper()
	wsURL := strings.Replace(info.URL, "http://", "ws://", 1) + "&access_token=" + info.AccessToken
	ws, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", info.URL, err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	hs := fmt.Sprintf(`{"protocol":%q,"version":1}`+"\x1e", proto.Name())
	if err := ws.Write(ctx, websocket.MessageText, []byte(hs)); err != nil {
		t.Fatal(err)
	}
	_, data, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if errText, rest, err := protocol.ParseHandshakeResponse(data); err != nil || errText != "" || len(rest) != 0 {
		t.Fatalf("handshake: %q %v", errText, err)
	}
	return &hubClient{ws: ws, proto: proto, dec: protocol.NewDecoder(proto, 1<<20)}
}

func (c *hubClient) send(ctx context.Context, t *testing.T, id, target string, args ...any) {
	t.Helper()
	inv := &protocol.Invocation{InvocationID: id, Target: target}
	for _, a := range args {
		v, err := protocol.ValueOf(a)
		if err != nil {
			t.Fatal(err)
		}
		inv.Arguments = append(inv.Arguments, v)
	}
	frame, err := c.proto.AppendFrame(nil, inv)
	if err != nil {
		t.Fatal(err)
	}
	typ := websocket.MessageText
	if c.proto.Binary() {
		typ = websocket.MessageBinary
	}
	if err := c.ws.Write(ctx, typ, frame); err != nil {
		t.Fatal(err)
	}
}

// next returns the next message other than a ping.
func (c *hubClient) next(ctx context.Context, t *testing.T) protocol.Message {
	t.Helper()
	for {
		m, err := c.dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if m != nil {
			if _, ping := m.(*protocol.Ping); !ping {
				return m
			}
			continue
		}
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		c.dec.Write(data)
	}
}

func (c *hubClient) invoke(ctx context.Context, t *testing.T, id, target string, args ...any) *protocol.Completion {
	t.Helper()
	c.send(ctx, t, id, target, args...)
	for {
		if comp, ok := c.next(ctx, t).(*protocol.Completion); ok && comp.InvocationID == id {
			return comp
		}
	}
}

// TestWithSignalbox runs the app as the upstream of a Signalbox started in the test and
// drives it with WebSocket clients speaking JSON and MessagePack.
func TestWithSignalbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const key = "signalbox-e2e-key-0123456789"

	sbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sbURL := "http://" + sbLn.Addr().String()

	events := eventLog{ch: make(chan string, 256)}
	appCtx, stopApp := context.WithCancel(ctx)
	addrc, appDone := make(chan string, 1), make(chan error, 1)
	go func() {
		appDone <- run(appCtx, slog.New(events), []string{
			"AzureSignalRConnectionString=Endpoint=" + sbURL + ";AccessKey=" + key + ";Version=1.0;",
			"FUNCTIONS_CUSTOMHANDLER_PORT=0",
		}, func(a string) { addrc <- a })
	}()
	var appBase string
	select {
	case a := <-addrc:
		appBase = "http://" + a
	case err := <-appDone:
		t.Fatalf("app: %v", err)
	case <-ctx.Done():
		t.Fatal("app did not start")
	}
	defer func() {
		stopApp()
		if err := <-appDone; err != nil {
			t.Errorf("app: %v", err)
		}
	}()

	cfg := server.Default()
	cfg.Listen = sbLn.Addr().String()
	cfg.PublicURL = sbURL
	cfg.AccessKeys = server.StringList{key}
	cfg.Upstream = server.StringList{appBase + functions.TriggerPath}
	sb, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sb.Serve(sbLn) }()
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = sb.Shutdown(sctx)
	}()

	alice := dialHub(ctx, t, appBase, "alice", protocol.JSON())
	connected := events.wait(t, "connected")
	if !strings.Contains(connected, "userId=alice") {
		t.Fatalf("connected log: %s", connected)
	}
	bob := dialHub(ctx, t, appBase, "bob", protocol.MessagePack())
	events.wait(t, "connected")

	for _, c := range []*hubClient{alice, bob} {
		comp := c.invoke(ctx, t, "1", "echo", map[string]any{"a": []int{1, 2}})
		got, _ := comp.Result.JSON()
		if comp.Error != "" || string(got) != `{"a":[1,2]}` {
			t.Fatalf("%s echo: %+v %s", c.proto.Name(), comp, got)
		}
	}
	comp := alice.invoke(ctx, t, "2", "joinGroup", "room")
	if comp.Error != "" {
		t.Fatalf("joinGroup: %s", comp.Error)
	}
	if members := sb.Registry().GroupConnections("chat", "room"); len(members) != 1 || members[0].UserID != "alice" {
		t.Fatalf("group room = %+v", members)
	}
	comp = bob.invoke(ctx, t, "3", "echo")
	if comp.Error != "The function accept 1 arguments but message provided 0." {
		t.Fatalf("echo(): %+v", comp)
	}

	bob.send(ctx, t, "", "broadcast", "hello")
	for _, c := range []*hubClient{alice, bob} {
		inv, ok := c.next(ctx, t).(*protocol.Invocation)
		if !ok || inv.Target != "newMessage" || len(inv.Arguments) != 1 {
			t.Fatalf("%s: got %#v", c.proto.Name(), inv)
		}
		var text string
		if err := inv.Arguments[0].Decode(&text); err != nil || text != "hello" {
			t.Fatalf("%s: newMessage(%q) %v", c.proto.Name(), text, err)
		}
	}

	alice.ws.Close(websocket.StatusNormalClosure, "bye")
	if l := events.wait(t, "disconnected"); !strings.Contains(l, "userId=alice") {
		t.Fatalf("disconnected log: %s", l)
	}
	bob.ws.Close(websocket.StatusNormalClosure, "bye")
	if l := events.wait(t, "disconnected"); !strings.Contains(l, "userId=bob") {
		t.Fatalf("disconnected log: %s", l)
	}
}
