package functions

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func twoEndpointService(t *testing.T) (*Service, *fakeService, *fakeService) {
	t.Helper()
	east, west := newFakeService(t), newFakeService(t)
	s, err := NewFromMap(map[string]string{
		"Azure__SignalR__Endpoints__east":            east.connectionString(),
		"Azure__SignalR__Endpoints__west__secondary": west.connectionString(),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, east, west
}

func TestHubScopedOperations(t *testing.T) {
	s, east, west := twoEndpointService(t)
	ctx := context.Background()
	h := s.Hub("Chat")
	if h.Name() != "chat" || h.Service() != s {
		t.Fatalf("hub %q", h.Name())
	}
	ops := []struct {
		do   func() error
		want []string // calls on each endpoint, in order
	}{
		{func() error { return h.Clients.All().Send(ctx, "t", 1) }, []string{`POST /api/hubs/chat/:send {"Target":"t","Arguments":[1]}`}},
		{func() error { return h.Clients.Client("c1").Send(ctx, "t") }, []string{`POST /api/hubs/chat/connections/c1/:send {"Target":"t","Arguments":[]}`}},
		{func() error { return h.Clients.Users("u1", "u2").Send(ctx, "t") }, []string{"POST /api/hubs/chat/users/u1/:send", "POST /api/hubs/chat/users/u2/:send"}},
		{func() error { return h.Clients.Groups("g1", "g2").Send(ctx, "t") }, []string{"POST /api/hubs/chat/groups/g1/:send", "POST /api/hubs/chat/groups/g2/:send"}},
		{func() error { return h.Groups.Add(ctx, "c1", "g") }, []string{"PUT /api/hubs/chat/groups/g/connections/c1"}},
		{func() error { return h.Groups.Remove(ctx, "c1", "g") }, []string{"DELETE /api/hubs/chat/groups/g/connections/c1"}},
		{func() error { return h.Groups.RemoveFromAll(ctx, "c1") }, []string{"DELETE /api/hubs/chat/connections/c1/groups"}},
		{func() error { return h.UserGroups.Remove(ctx, "u", "g") }, []string{"DELETE /api/hubs/chat/users/u/groups/g"}},
		{func() error { return h.UserGroups.RemoveFromAll(ctx, "u") }, []string{"DELETE /api/hubs/chat/users/u/groups"}},
	}
	for i, op := range ops {
		if err := op.do(); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		for _, f := range []*fakeService{east, west} {
			calls := f.takeCalls()
			if len(calls) != len(op.want) {
				t.Fatalf("op %d: calls %q, want %q", i, calls, op.want)
			}
			for j := range calls {
				if !strings.HasPrefix(calls[j], op.want[j]) {
					t.Errorf("op %d: call %q, want %q", i, calls[j], op.want[j])
				}
			}
		}
	}
	if err := h.Clients.All().Send(ctx, ""); !errors.Is(err, ErrNoTarget) {
		t.Errorf("empty target: %v", err)
	}

	// WithEndpoints restricts every operation; an unknown name is an error.
	w, err := h.WithEndpoints("WEST")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Clients.All().Send(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if len(east.takeCalls()) != 0 || len(west.takeCalls()) != 1 {
		t.Error("WithEndpoints did not restrict the send")
	}
	if _, err := h.WithEndpoints("north"); !errors.Is(err, ErrUnknownEndpoint) {
		t.Errorf("unknown endpoint: %v", err)
	}

	// A partial delivery is done (a hub method returning it would fail a delivered
	// invocation); nothing delivered is an error.
	east.Close()
	if err := h.Clients.All().Send(ctx, "t"); err != nil {
		t.Errorf("partial delivery: %v", err)
	}
	if err := h.Clients.Users("u1", "u2").Send(ctx, "t"); err != nil {
		t.Errorf("partial delivery to users: %v", err)
	}
	west.Close()
	if err := h.Groups.Add(ctx, "c", "g"); err == nil {
		t.Error("no endpoint accepted, no error")
	}
}

type boundHub struct {
	*Hub
}

func (b *boundHub) Ping(ctx context.Context) error { return b.Clients.All().Send(ctx, "pong") }

func TestServiceRegisterHubBinds(t *testing.T) {
	f := newFakeService(t)
	s := newTestService(t, f)
	tr := newTestTrigger(t, TriggerOptions{})
	hub := &boundHub{}
	if err := s.RegisterHub(tr, hub, nil); err != nil {
		t.Fatal(err)
	}
	if hub.Hub == nil || hub.Name() != "boundhub" {
		t.Fatalf("not bound: %+v", hub.Hub)
	}
	if err := hub.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls := f.takeCalls(); len(calls) != 1 || !strings.HasPrefix(calls[0], "POST /api/hubs/boundhub/:send") {
		t.Errorf("calls %q", calls)
	}
	// Hub's own methods (Name, Negotiate, ...) are not events: only Ping is.
	if len(tr.handlers) != 1 {
		t.Errorf("%d handlers registered", len(tr.handlers))
	}
	if err := s.RegisterHub(newTestTrigger(t, TriggerOptions{}), boundHub{}, nil); err == nil || !strings.Contains(err.Error(), "pass a pointer") {
		t.Errorf("value hub: %v", err)
	}
	other := newTestService(t, newFakeService(t))
	if err := s.RegisterHub(newTestTrigger(t, TriggerOptions{}), &boundHub{Hub: other.Hub("boundhub")}, nil); err == nil {
		t.Error("a hub of another Service was accepted")
	}
	if err := s.RegisterHub(newTestTrigger(t, TriggerOptions{}), &boundHub{Hub: s.Hub("boundhub")}, nil); err != nil {
		t.Errorf("a hub set by hand: %v", err)
	}
}

func TestConnectionInfoEndpointChoice(t *testing.T) {
	s, east, west := twoEndpointService(t)
	ctx := context.Background()
	for range 5 {
		info, err := s.ConnectionInfo(ctx, "chat", &ConnectionInfoOptions{Endpoint: "West"})
		if err != nil || !strings.HasPrefix(info.URL, west.URL) {
			t.Fatalf("named: %v, %v", info.URL, err)
		}
	}
	if _, err := s.ConnectionInfo(ctx, "chat", &ConnectionInfoOptions{Endpoint: "north"}); !errors.Is(err, ErrUnknownEndpoint) {
		t.Errorf("unknown name: %v", err)
	}
	var seen []EndpointInfo
	info, err := s.ConnectionInfo(ctx, "chat", &ConnectionInfoOptions{SelectEndpoint: func(eps []EndpointInfo) (EndpointInfo, error) {
		seen = eps
		return eps[len(eps)-1], nil
	}})
	if err != nil || !strings.HasPrefix(info.URL, west.URL) || len(seen) != 2 || !seen[0].Online {
		t.Errorf("selected: %v, %v, %+v", info.URL, err, seen)
	}
	if _, err := s.ConnectionInfo(ctx, "chat", &ConnectionInfoOptions{SelectEndpoint: func([]EndpointInfo) (EndpointInfo, error) {
		return EndpointInfo{Name: "east", EndpointType: "Primary", Endpoint: "https://elsewhere"}, nil
	}}); !errors.Is(err, ErrUnknownEndpoint) {
		t.Errorf("made-up endpoint: %v", err)
	}
	boom := errors.New("boom")
	if _, err := s.ConnectionInfo(ctx, "chat", &ConnectionInfoOptions{SelectEndpoint: func([]EndpointInfo) (EndpointInfo, error) {
		return EndpointInfo{}, boom
	}}); !errors.Is(err, boom) {
		t.Errorf("selector error: %v", err)
	}
	_ = east
}
