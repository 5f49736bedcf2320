package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/internal/server"
	"github.com/signalbox-io/signalbox/management"
	"github.com/signalbox-io/signalbox/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "client-test-access-key-0123456789abcdefghijkl"

// signalbox is an in-process Signalbox with an upstream function app (hub "chat":
// echo(x) returns x, fail() fails) on loopback listeners.
type signalbox struct {
	t        *testing.T
	endpoint string
	mgmt     *management.Client
}

func startSignalbox(t *testing.T) *signalbox {
	t.Helper()
	trigger, err := functions.NewTrigger(functions.TriggerOptions{AccessKeys: []string{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	trigger.HandleMessage("chat", "echo", func(x protocol.Value) protocol.Value { return x })
	trigger.HandleMessage("chat", "fail", func() error { return errors.New("it failed") })
	app := httptest.NewServer(trigger)
	t.Cleanup(app.Close)

	cfg := server.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.AccessKeys = server.StringList{testKey}
	cfg.Upstream = server.StringList{app.URL + functions.TriggerPath}
	srv, err := server.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	sb := &signalbox{t: t, endpoint: "http://" + ln.Addr().String()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	ep, err := connection.NewEndpoint("", connection.Primary, "Endpoint="+sb.endpoint+";AccessKey="+testKey+";Version=1.0;", nil)
	if err != nil {
		t.Fatal(err)
	}
	sb.mgmt, err = management.NewClient([]connection.Endpoint{ep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.mgmt.Close() })
	return sb
}

// hubURL is the client URL of hub.
func (sb *signalbox) hubURL(hub string) string { return auth.ClientURL(sb.endpoint, hub) }

// tokenFor returns an AccessToken function for a client of hub.
func (sb *signalbox) tokenFor(hub, user string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		return auth.NewToken(testKey, auth.TokenOptions{Audience: auth.ClientAudience(sb.endpoint, hub), UserID: user})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
