package upstream

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// Regression (issue 7, found 8): an upstream error body was logged as-is, and a function
// app that echoes its request put the ?code= key (and more) in the service's log.
func TestUpstreamErrorBodyRedactedInLog(t *testing.T) {
	const fnKey = "FUNCTION-KEY-abc123"
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("bad request to " + r.URL.String() + " sig=" + r.Header.Get("X-ASRS-Signature") + " other key=hunter22"))
	})
	var logs logBuffer
	u := newUpstream(t, Options{
		Rules:      []Rule{{URLTemplate: f.srv.URL + "/api/{event}?code=" + fnKey}},
		AccessKeys: []string{"primary-access-key-0123456789"},
		Logger:     logs.logger(),
	})
	rep := newReplies(protocol.JSON())
	s := u.Open(ConnInfo{ID: "c1", Hub: "chat", Protocol: protocol.JSON()}, rep.fn)
	s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "echo"})
	if c := rep.next(t); c.Error == "" {
		t.Fatal("want a Completion error")
	}
	out := logs.String()
	if !strings.Contains(out, "upstream call failed") || !strings.Contains(out, "response=") {
		t.Fatalf("no failure line with the response: %s", out)
	}
	for _, secret := range []string{fnKey, "hunter22", "sha256="} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q: %s", secret, out)
		}
	}
}

// slowFake stalls every call of event "slow" until release is closed and answers the
// others at once.
func slowFake(t *testing.T) (f *fake, stalled chan struct{}, release chan struct{}) {
	stalled = make(chan struct{}, 1024)
	release = make(chan struct{})
	f = newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-ASRS-Event"), "slow") {
			stalled <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return f, stalled, release
}

func waitStalled(t *testing.T, stalled chan struct{}, n int) {
	t.Helper()
	for range n {
		select {
		case <-stalled:
		case <-time.After(waitFor):
			t.Fatalf("only some of %d slow calls reached the upstream", n)
		}
	}
}

// Regression (issue 7, found 2): with 70 connections invoking an event the function
// app answers slowly, another client's echo waited for them: every call shared one pool
// of 64 connections per upstream host.
func TestSlowEventDoesNotStallOthers(t *testing.T) {
	f, stalled, release := slowFake(t)
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL + "/{event}"})})
	const slow = 70
	for i := range slow {
		s := u.Open(ConnInfo{ID: fmt.Sprint("s", i), Hub: "chat", Protocol: protocol.JSON()}, func([]byte) {})
		s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "slow"})
	}
	waitStalled(t, stalled, slow)
	rep := newReplies(protocol.JSON())
	start := time.Now()
	u.Open(ConnInfo{ID: "fast", Hub: "chat", Protocol: protocol.JSON()}, rep.fn).Invoke(&protocol.Invocation{InvocationID: "2", Target: "echo"})
	if c := rep.next(t); c.Error != "" {
		t.Fatalf("echo: %+v", c)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("echo took %v behind %d slow calls", d, slow)
	}
	close(release)
}

// One event at its MaxInFlightPerEvent fails its next invocation at once with a clear
// error, while the other events of the hub go on; MaxInFlightPerHub does the same for
// a hub.
func TestInFlightLimitsPerEventAndHub(t *testing.T) {
	f, stalled, release := slowFake(t)
	u := newUpstream(t, Options{Rules: ParseRules([]string{f.srv.URL + "/{event}"}), MaxInFlightPerEvent: 3, MaxInFlightPerHub: 5})
	defer close(release)
	open := func(id, hub string) (*Session, *replies) {
		rep := newReplies(protocol.JSON())
		return u.Open(ConnInfo{ID: id, Hub: hub, Protocol: protocol.JSON()}, rep.fn), rep
	}
	for i := range 3 {
		s, _ := open(fmt.Sprint("s", i), "chat")
		s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "slow"})
	}
	waitStalled(t, stalled, 3)
	s, rep := open("x", "chat")
	s.Invoke(&protocol.Invocation{InvocationID: "9", Target: "SLOW"})
	if c := rep.next(t); c.Error != ErrTextOverloaded+": 3 calls in flight for event SLOW of hub chat." {
		t.Fatalf("4th slow call: %q", c.Error)
	}
	s.Invoke(&protocol.Invocation{InvocationID: "10", Target: "echo"})
	if c := rep.next(t); c.Error != "" || c.InvocationID != "10" {
		t.Fatalf("echo beside a saturated event: %+v", c)
	}
	// Two slow calls of another event fill the hub's 5 slots: then even echo is refused
	// in chat, and another hub is not affected.
	for i := range 2 {
		s, _ := open(fmt.Sprint("t", i), "chat")
		s.Invoke(&protocol.Invocation{InvocationID: "1", Target: "slow2"})
	}
	waitStalled(t, stalled, 2)
	s.Invoke(&protocol.Invocation{InvocationID: "11", Target: "echo"})
	if c := rep.next(t); c.Error != ErrTextOverloaded+": 5 calls in flight for hub chat." {
		t.Fatalf("echo in a saturated hub: %q", c.Error)
	}
	o, orep := open("other", "news")
	o.Invoke(&protocol.Invocation{InvocationID: "1", Target: "echo"})
	if c := orep.next(t); c.Error != "" {
		t.Fatalf("other hub: %+v", c)
	}
	if st := u.Stats(); st.Overloaded != 2 {
		t.Fatalf("overloaded %d, want 2", st.Overloaded)
	}
}
