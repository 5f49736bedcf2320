package client_test

import (
	"context"
	"errors"
	"fmt"
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
	endpoint string
	mgmt     *management.Client
}

func startSignalbox(t *testing.T) *signalbox {
	t.Helper()
	sb, stop, err := newSignalbox()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return sb
}

// newSignalbox starts the server and its function app; stop shuts both down.
func newSignalbox() (sb *signalbox, stop func() error, err error) {
	trigger, err := functions.NewTrigger(functions.TriggerOptions{AccessKeys: []string{testKey}})
	if err != nil {
		return nil, nil, err
	}
	trigger.HandleMessage("chat", "echo", func(x protocol.Value) protocol.Value { return x })
	trigger.HandleMessage("chat", "fail", func() error { return errors.New("it failed") })
	app := httptest.NewServer(trigger)

	cfg := server.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.AccessKeys = server.StringList{testKey}
	cfg.Upstream = server.StringList{app.URL + functions.TriggerPath}
	srv, err := server.New(cfg, nil)
	if err != nil {
		app.Close()
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		app.Close()
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	sb = &signalbox{endpoint: "http://" + ln.Addr().String()}
	stop = func() error {
		if sb.mgmt != nil {
			_ = sb.mgmt.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		app.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("Serve: %w", err)
		}
		return nil
	}
	ep, err := connection.NewEndpoint("", connection.Primary, "Endpoint="+sb.endpoint+";AccessKey="+testKey+";Version=1.0;", nil)
	if err == nil {
		sb.mgmt, err = management.NewClient([]connection.Endpoint{ep}, nil)
	}
	if err != nil {
		_ = stop()
		return nil, nil, err
	}
	return sb, stop, nil
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
