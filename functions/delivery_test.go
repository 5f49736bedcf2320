package functions

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/management"
)

// Issue 11 item 1: with the primary stopped but not yet known to be offline, Output and
// Send failed although the secondary's clients got the message, so the Functions host
// retried the invocation and the secondary's clients got it twice. Now Send reports the
// partial delivery (typed, naming the failed endpoint) and Output succeeds.
func TestPartialDeliveryDoesNotFailOutput(t *testing.T) {
	s, east, west := twoEndpointService(t)
	ctx := context.Background()
	east.Close() // stopped, not yet detected

	err := s.Send(ctx, "chat", Message{Target: "t", Arguments: []any{1}})
	var de *management.DeliveryError
	if !errors.As(err, &de) || !management.Delivered(err) {
		t.Fatalf("Send: %v", err)
	}
	if len(de.Failed) != 1 || de.Failed[0].Endpoint.Name != "east" || len(de.Delivered) != 1 || de.Delivered[0].Name != "west" {
		t.Fatalf("delivered %v, failed %v", de.Delivered, de.Failed)
	}
	if n := len(west.takeCalls()); n != 1 {
		t.Fatalf("west got %d calls", n)
	}

	for name, item := range map[string]any{
		"message":      Message{Target: "t"},
		"group action": GroupAction{Action: GroupAdd, UserID: "u", GroupName: "g"},
		"JSON":         json.RawMessage(`[{"target":"t"},{"action":"remove","connectionId":"c","groupName":"g"}]`),
	} {
		if err := s.Output(ctx, "chat", item); err != nil {
			t.Errorf("Output(%s) failed a delivered item: %v", name, err)
		}
	}
	if n := len(west.takeCalls()); n != 4 {
		t.Errorf("west got %d calls, want 4", n)
	}

	// Nothing delivered anywhere still fails the invocation.
	west.Close()
	if err := s.Output(ctx, "chat", Message{Target: "t"}); err == nil || management.Delivered(err) {
		t.Errorf("Output with every endpoint down: %v", err)
	}
}

// Issue 11 item 5: Service.NewTrigger took AccessKeys and SkipSignatureValidation and
// ignored them.
func TestServiceNewTriggerOptions(t *testing.T) {
	s := newTestService(t, newFakeService(t))
	if _, err := s.NewTrigger(&TriggerOptions{AccessKeys: []string{"other"}}); !errors.Is(err, ErrTriggerAccessKeys) {
		t.Errorf("AccessKeys: %v", err)
	}
	tr, err := s.NewTrigger(&TriggerOptions{SkipSignatureValidation: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tr.String(), "signatureValidation: false") {
		t.Errorf("SkipSignatureValidation ignored: %v", tr)
	}
	tr, err = s.NewTrigger(nil)
	if err != nil || !strings.Contains(tr.String(), "keys: 1, signatureValidation: true") {
		t.Errorf("default: %v, %v", tr, err)
	}
}

// Issue 11 items 2 and 5: New reads the health settings (failover is configurable by app
// setting), and a settings error is named once ("functions: settings X: setting X: …").
func TestNewSettings(t *testing.T) {
	f := newFakeService(t)
	s, err := NewFromMap(map[string]string{
		"Azure__SignalR__Endpoints__a":        f.connectionString(),
		"Azure__SignalR__Endpoints__b":        strings.Replace(f.connectionString(), "127.0.0.1", "localhost", 1),
		"AzureSignalRHealthCheck__Interval":   "00:00:00.05",
		"AzureSignalRHealthCheck__MaxRetries": "0",
	}, &Options{Client: &management.ClientOptions{Health: management.HealthOptions{Timeout: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for s.Endpoints()[0].Online || s.Endpoints()[1].Online {
		if time.Now().After(deadline) {
			t.Fatal("the 50 ms health interval from the settings was not used")
		}
		time.Sleep(10 * time.Millisecond)
	}

	_, err = NewFromMap(map[string]string{"AzureSignalRConnectionString": "Endpoint=https://x;Port=0;AccessKey=k"}, nil)
	if err == nil || err.Error() != "setting AzureSignalRConnectionString: Invalid value for port property, it must be an positive integer between (0, 65536)." {
		t.Errorf("settings error %q", err)
	}
	_, err = NewFromMap(map[string]string{"AzureSignalRConnectionString": "Endpoint=https://x;AccessKey=k", "AzureSignalRHealthCheck__Timeout": "x"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "setting AzureSignalRHealthCheck:Timeout:") {
		t.Errorf("health setting error %q", err)
	}
}

// Issue 11 item 5: texts behind repeated prefixes ("functions: output item 0: functions:
// unknown group action ...") with no sentinel to match.
func TestOutputErrorsHaveOnePrefixAndASentinel(t *testing.T) {
	s := newTestService(t, newFakeService(t))
	err := s.Output(context.Background(), "chat", Message{Target: "a"}, GroupAction{Action: "join", UserID: "u", GroupName: "g"})
	if !errors.Is(err, ErrUnknownGroupAction) || strings.Count(err.Error(), "functions:") != 1 {
		t.Errorf("error %q", err)
	}
	if _, err := ParseGroupActionType("join"); !errors.Is(err, ErrUnknownGroupAction) || err.Error() != `unknown group action "join" (want add, remove or removeAll)` {
		t.Errorf("ParseGroupActionType: %v", err)
	}
}
