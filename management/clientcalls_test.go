package management_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/cluster"
	"github.com/signalbox-io/signalbox/internal/odata"
	"github.com/signalbox-io/signalbox/internal/restapi"
	"github.com/signalbox-io/signalbox/management"
	"github.com/signalbox-io/signalbox/protocol"
)

// fakeCalls answers :invoke from a table and records stream operations.
type fakeCalls struct {
	mu     sync.Mutex
	events []string
}

func (f *fakeCalls) Invoke(_ context.Context, _, connID string, inv *protocol.Invocation) (*protocol.Completion, error) {
	if connID != "c1" {
		return nil, restapi.ErrNoConnection
	}
	switch inv.Target {
	case "add":
		var a, b int
		_ = inv.Arguments[0].Decode(&a)
		_ = inv.Arguments[1].Decode(&b)
		v, _ := protocol.ValueOf(a + b)
		return &protocol.Completion{Result: v, HasResult: true}, nil
	case "slow":
		return nil, restapi.ErrInvocationTimeout
	}
	return &protocol.Completion{Error: "no handler for " + inv.Target}, nil
}

func (f *fakeCalls) record(s string) {
	f.mu.Lock()
	f.events = append(f.events, s)
	f.mu.Unlock()
}

func (f *fakeCalls) StreamItem(_ context.Context, _, connID, streamID string, item protocol.Value, complete bool) error {
	raw, _ := item.JSON()
	f.record(connID + "/" + streamID + " item " + string(raw) + map[bool]string{true: " last", false: ""}[complete])
	return nil
}

func (f *fakeCalls) CompleteStream(_ context.Context, _, connID, streamID, errText string) error {
	f.record(connID + "/" + streamID + " complete " + errText)
	return nil
}

func (f *fakeCalls) HubConnections(context.Context, string) ([]odata.Connection, error) {
	return []odata.Connection{
		{ID: "c1", UserID: "listener-1", InGroup: func(string) bool { return false }},
		{ID: "c2", UserID: "speaker", InGroup: func(string) bool { return false }},
	}, nil
}

// TestClientCallsAgainstSignalbox: the typed operations of REST 2024-12-01 against
// Signalbox's REST handler.
func TestClientCallsAgainstSignalbox(t *testing.T) {
	const key = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefgh"
	node, err := cluster.NewNode(context.Background(), cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := newConn("c1", "listener-1"), newConn("c2", "speaker")
	node.Registry().Add(c1)
	node.Registry().Add(c2)
	calls := &fakeCalls{}
	c, _ := clientFor(t, restapi.New(restapi.Options{
		Hubs: node, Validator: &auth.Validator{Keys: []string{key}}, Calls: calls, Connections: calls,
	}), key)
	ctx := context.Background()

	res, err := c.InvokeConnection(ctx, "chat", "c1", "add", []any{2, 3}, nil)
	if err != nil || string(res) != "5" {
		t.Errorf("invoke add = %s, %v", res, err)
	}
	for target, code := range map[string]string{"nope": management.CodeInvocationFailed, "slow": management.CodeInvocationTimeout} {
		_, err = c.InvokeConnection(ctx, "chat", "c1", target, nil, nil)
		var re *management.ResponseError
		if !errors.As(err, &re) || re.ErrorCode != code {
			t.Errorf("invoke %s: %v, want %s", target, err, code)
		}
	}
	_, err = c.InvokeConnection(ctx, "chat", "gone", "add", []any{1, 1}, nil)
	var re *management.ResponseError
	if !errors.As(err, &re) || re.ErrorCode != management.CodeConnectionNotExistedError {
		t.Errorf("invoke on an unknown connection: %v", err)
	}

	if err := c.SendStreamItem(ctx, "chat", "c1", "0", map[string]int{"n": 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SendStreamItem(ctx, "chat", "c1", "0", json.RawMessage(`"two"`), &management.StreamItemOptions{Completed: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.CompleteStream(ctx, "chat", "c1", "1", &management.CompleteStreamOptions{Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(calls.events, "|"); got != `c1/0 item {"n":1}|c1/0 item "two" last|c1/1 complete boom` {
		t.Errorf("stream operations: %s", got)
	}

	err = c.Execute(ctx, "chat", "startswith(userId, 'listener-')", []management.Command{
		{Type: management.CommandJoinGroup, Group: "g"},
		{Type: management.CommandSendMessage, Target: "m", Arguments: []any{"hi"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := c1.Take(); len(f) != 1 || f[0] != `{"type":1,"target":"m","arguments":["hi"]}` {
		t.Errorf("execute: c1 got %q", f)
	}
	if f := c2.Take(); len(f) != 0 {
		t.Errorf("execute: c2 (not selected) got %q", f)
	}
	if ok, _ := c.UserInGroup(ctx, "chat", "g", "listener-1", nil); !ok {
		t.Error("execute: JoinGroup did not join c1")
	}
	err = c.Execute(ctx, "chat", "userId gt 'a'", []management.Command{{Type: management.CommandCloseConnection}}, nil)
	if !errors.As(err, &re) || re.StatusCode != 400 || !strings.Contains(re.Message, "not supported") {
		t.Errorf("execute with an unsupported filter: %v", err)
	}
	if err := c.Execute(ctx, "chat", "", []management.Command{{Type: "Explode"}}, nil); err == nil {
		t.Error("execute accepted an unknown command type")
	}
}
