package management

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/signalbox-io/signalbox/connection"
)

// noRetryHealth makes health checks answer at once.
var noRetryHealth = HealthOptions{Retries: -1, Timeout: time.Second}

func TestFanOut(t *testing.T) {
	a, b := newFakeService(t, testKey), newFakeService(t, testKey)
	epA, epB := a.endpoint("a", connection.Primary), b.endpoint("b", connection.Secondary)
	c := newTestClient(t, &ClientOptions{Health: noRetryHealth}, epA, epB)
	ctx := context.Background()

	if err := c.SendToAll(ctx, "chat", "t", []any{1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.AddConnectionToGroup(ctx, "chat", "g", "c1", nil); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*fakeService{"a": a, "b": b} {
		if n := len(f.requests()); n != 2 {
			t.Errorf("endpoint %s got %d requests, want 2", name, n)
		}
	}

	// Endpoint filter.
	a.reset()
	b.reset()
	if err := c.SendToUser(ctx, "chat", "u", "t", nil, &SendOptions{Endpoints: []connection.Endpoint{epB}}); err != nil {
		t.Fatal(err)
	}
	if len(a.requests()) != 0 || len(b.requests()) != 1 {
		t.Errorf("filter: a %d, b %d requests", len(a.requests()), len(b.requests()))
	}
	// An empty or unmatched filter sends nothing and says so (it used to succeed silently).
	if err := c.SendToUser(ctx, "chat", "u", "t", nil, &SendOptions{Endpoints: []connection.Endpoint{}}); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("empty filter: %v", err)
	}
	other := epB
	other.Name = "someone-else"
	if err := c.RemoveUserFromAllGroups(ctx, "chat", "u", &GroupOptions{Endpoints: []connection.Endpoint{other}}); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("unmatched filter: %v", err)
	}
	if len(a.requests()) != 0 || len(b.requests()) != 1 {
		t.Errorf("empty/unmatched filter sent requests: a %d, b %d", len(a.requests()), len(b.requests()))
	}

	// One endpoint fails: the error names it and keeps the ResponseError.
	b.setRespond(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	a.reset()
	err := c.SendToGroup(ctx, "chat", "g", "t", nil, nil)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 || !strings.Contains(err.Error(), "[b](Secondary)") {
		t.Errorf("error %v", err)
	}
	if len(a.requests()) != 1 {
		t.Error("healthy endpoint was not sent to")
	}

	// Checks: true when any endpoint says true.
	b.setRespond(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-ms-error-code", CodeConnectionNotExisted)
		w.WriteHeader(http.StatusNotFound)
	})
	a.setRespond(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-ms-error-code", CodeConnectionNotExisted)
		w.WriteHeader(http.StatusNotFound)
	})
	if ok, err := c.ConnectionExists(ctx, "chat", "c1", nil); ok || err != nil {
		t.Errorf("neither has it: %v, %v", ok, err)
	}
	a.setRespond(nil)
	if ok, err := c.ConnectionExists(ctx, "chat", "c1", nil); !ok || err != nil {
		t.Errorf("a has it: %v, %v", ok, err)
	}
	b.setRespond(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	if ok, err := c.ConnectionExists(ctx, "chat", "c1", nil); !ok || err != nil {
		t.Errorf("a has it, b fails: %v, %v", ok, err)
	}
}

func TestOfflineEndpointsSkipped(t *testing.T) {
	a, b := newFakeService(t, testKey), newFakeService(t, testKey)
	c := newTestClient(t, &ClientOptions{Health: noRetryHealth}, a.endpoint("a", connection.Primary), b.endpoint("b", connection.Primary))
	ctx := context.Background()
	b.healthy.Store(false)
	c.CheckHealth(ctx)
	// Delivered to a; b is named as failed (skipped as offline).
	err := c.SendToAll(ctx, "chat", "t", nil, nil)
	var de *DeliveryError
	if !errors.As(err, &de) || !Delivered(err) || len(de.Delivered) != 1 || de.Delivered[0].Name != "a" ||
		len(de.Failed) != 1 || de.Failed[0].Endpoint.Name != "b" || !errors.Is(de.Failed[0].Err, ErrEndpointOffline) {
		t.Fatalf("one endpoint offline: %v", err)
	}
	if errors.Is(err, ErrNoOnlineEndpoint) {
		t.Error("a partial delivery matches ErrNoOnlineEndpoint")
	}
	if len(a.requests()) != 1 || len(b.requests()) != 0 {
		t.Errorf("a %d, b %d requests", len(a.requests()), len(b.requests()))
	}
	a.healthy.Store(false)
	c.CheckHealth(ctx)
	if err := c.SendToAll(ctx, "chat", "t", nil, nil); !errors.Is(err, ErrNoOnlineEndpoint) {
		t.Errorf("all offline: %v", err)
	}
	if _, err := c.GroupExists(ctx, "chat", "g", nil); !errors.Is(err, ErrNoOnlineEndpoint) {
		t.Errorf("all offline check: %v", err)
	}
}

func TestPickEndpoint(t *testing.T) {
	p1, p2, s := newFakeService(t, testKey), newFakeService(t, testKey), newFakeService(t, testKey)
	c := newTestClient(t, &ClientOptions{Health: noRetryHealth},
		p1.endpoint("p1", connection.Primary), s.endpoint("s", connection.Secondary), p2.endpoint("p2", connection.Primary))
	ctx := context.Background()
	picks := func() map[string]int {
		m := map[string]int{}
		for range 200 {
			ep, err := c.PickEndpoint("chat")
			if err != nil {
				m["error"]++
				continue
			}
			m[ep.Name]++
		}
		return m
	}
	if m := picks(); m["p1"] == 0 || m["p2"] == 0 || m["s"] != 0 || m["error"] != 0 {
		t.Errorf("all online: %v", m)
	}
	p1.healthy.Store(false)
	c.CheckHealth(ctx)
	if m := picks(); m["p2"] != 200 {
		t.Errorf("p1 offline: %v", m)
	}
	p2.healthy.Store(false)
	c.CheckHealth(ctx)
	if m := picks(); m["s"] != 200 {
		t.Errorf("primaries offline: %v", m)
	}
	s.healthy.Store(false)
	c.CheckHealth(ctx)
	if _, err := c.PickEndpoint("chat"); !errors.Is(err, ErrNotConnected) ||
		err.Error() != "Azure SignalR Service is not connected yet, please try again later." {
		t.Errorf("all offline: %v", err)
	}
	p1.healthy.Store(true)
	c.CheckHealth(ctx)
	if m := picks(); m["p1"] != 200 {
		t.Errorf("p1 back: %v", m)
	}
	var online []string
	for _, st := range c.Endpoints() {
		if st.Online {
			online = append(online, st.Name)
		}
	}
	if strings.Join(online, ",") != "p1" {
		t.Errorf("Endpoints() online = %v", online)
	}
}

func TestPickSingleEndpointIgnoresHealth(t *testing.T) {
	f := newFakeService(t, testKey)
	c := newTestClient(t, &ClientOptions{Health: noRetryHealth}, f.endpoint("only", connection.Secondary))
	f.healthy.Store(false)
	c.CheckHealth(context.Background())
	if ep, err := c.PickEndpoint("chat"); err != nil || ep.Name != "only" {
		t.Errorf("PickEndpoint = %v, %v", ep, err)
	}
	if err := c.SendToAll(context.Background(), "chat", "t", nil, nil); err != nil {
		t.Errorf("send to the only endpoint while it looks offline: %v", err)
	}
}

func TestHealthRetries(t *testing.T) {
	a, b := newFakeService(t, testKey), newFakeService(t, testKey)
	a.health = make(chan struct{}, 10)
	c := newTestClient(t, &ClientOptions{Health: HealthOptions{Retries: 2, RetryDelay: time.Millisecond, Timeout: time.Second}},
		a.endpoint("a", connection.Primary), b.endpoint("b", connection.Primary))
	a.healthy.Store(false)
	c.CheckHealth(context.Background())
	if n := len(a.health); n != 3 {
		t.Errorf("%d health requests, want 3 (1 + 2 retries)", n)
	}
	if c.Endpoints()[0].Online {
		t.Error("a still online")
	}
}

func TestHealthLoop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a, b := newFakeService(t, testKey), newFakeService(t, testKey)
	a.health = make(chan struct{})
	c, err := NewClient([]connection.Endpoint{a.endpoint("a", connection.Primary), b.endpoint("b", connection.Primary)},
		&ClientOptions{Health: HealthOptions{Interval: 5 * time.Millisecond, Retries: -1, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err == nil {
		t.Error("second Start: no error")
	}
	waitHealth := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-a.health:
			case <-time.After(5 * time.Second):
				t.Fatal("no health check within 5s")
			}
		}
	}
	a.healthy.Store(false)
	// The loop is sequential: once the second check after the change has arrived, the
	// round that saw the change has been applied.
	waitHealth(2)
	if c.Endpoints()[0].Online {
		t.Error("a still online after failed checks")
	}
	a.healthy.Store(true)
	waitHealth(2)
	if !c.Endpoints()[0].Online {
		t.Error("a not back online")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	a.srv.Close()
	b.srv.Close()
}

func TestNewClientErrors(t *testing.T) {
	if _, err := NewClient(nil, nil); !errors.Is(err, connection.ErrNotConfigured) {
		t.Errorf("no endpoints: %v", err)
	}
	if _, err := NewClient([]connection.Endpoint{{Endpoint: "https://x"}}, nil); err == nil {
		t.Error("endpoint without key or credential: no error")
	}
	if _, err := NewClient([]connection.Endpoint{{AccessKey: "k"}}, nil); err == nil {
		t.Error("endpoint without URL: no error")
	}
	if _, err := NewClient([]connection.Endpoint{{Endpoint: "https://x", AccessKey: "k"}}, &ClientOptions{Retry: RetryOptions{MaxRetries: -1}}); err == nil {
		t.Error("negative retries: no error")
	}
	for _, bad := range []connection.Endpoint{
		{Endpoint: "x.service.signalr.net", AccessKey: "k"},
		{Endpoint: "https://x", AccessKey: "k", ClientEndpoint: "ftp://c"},
		{Endpoint: "https://x", AccessKey: "k", ServerEndpoint: "/relative"},
	} {
		if _, err := NewClient([]connection.Endpoint{bad}, nil); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	c, err := NewClient([]connection.Endpoint{{Endpoint: "https://x/", AccessKey: "k", ClientEndpoint: "https://c"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep := c.Endpoints()[0]
	if ep.Endpoint.Endpoint != "https://x" || ep.ServerEndpoint != "https://x/" || ep.ClientEndpoint != "https://c/" || !ep.Online {
		t.Errorf("hand-built endpoint not completed: %+v", ep)
	}
}

// EndpointStatus encodes as an entry of the signalREndpoints binding, online state included,
// without the access key.
func TestEndpointStatusJSON(t *testing.T) {
	ep, err := connection.NewEndpoint("east", connection.Primary, "Endpoint=https://x.service.signalr.net;AccessKey=SECRET-KEY;", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(EndpointStatus{Endpoint: ep, Online: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"endpointType":"Primary","name":"east","endpoint":"https://x.service.signalr.net","online":true}`; string(b) != want {
		t.Errorf("JSON %s\nwant %s", b, want)
	}
}

// An endpoint filter names an endpoint as the extension's JSON does (scheme://host:port,
// default port included) or as connection does (default port dropped): both match.
func TestEndpointFilterDefaultPort(t *testing.T) {
	key := func(u string) connection.Endpoint {
		return connection.Endpoint{Endpoint: u, AccessKey: testKey}
	}
	c := newTestClient(t, nil, key("https://x.service.signalr.net"), key("http://localhost:8080"))
	for _, tt := range []struct {
		filter string
		want   int // index of the matched endpoint, -1 none
	}{
		{"https://x.service.signalr.net", 0},
		{"https://x.service.signalr.net:443", 0},
		{"HTTPS://X.service.signalr.net:443/", 0},
		{"http://x.service.signalr.net:443", -1},
		{"https://x.service.signalr.net:8443", -1},
		{"http://localhost:8080/", 1},
		{"http://localhost", -1},
	} {
		got := c.targets([]connection.Endpoint{key(tt.filter)})
		switch {
		case tt.want < 0 && len(got) != 0:
			t.Errorf("%s matched %v", tt.filter, got[0].ep)
		case tt.want >= 0 && (len(got) != 1 || got[0] != c.eps[tt.want]):
			t.Errorf("%s matched %d endpoints, want %s", tt.filter, len(got), c.eps[tt.want].ep)
		}
	}
}
