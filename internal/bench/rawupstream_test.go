package bench

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/internal/server"
	"github.com/signalbox-io/signalbox/internal/servertest"
)

// upstreamRig is a real server in this process whose upstream is a function app of
// the test's, and a raw upstream generator with n clients connected to it.
type upstreamRig struct {
	g       *rawUpstream
	flushed chan struct{} // a read loop took a read
}

// startUpstreamRig starts the function app with echo, the server (cfg's defaults
// changed by set) and n raw clients.
func startUpstreamRig(t *testing.T, n int, timeout time.Duration, set func(*server.Config), echo functions.MessageFunc) *upstreamRig {
	t.Helper()
	app, err := startFunctionApp(rawTestKey, "bench", echo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.close)
	cfg := server.Default()
	cfg.AccessKeys = server.StringList{rawTestKey}
	cfg.NegotiateRate, cfg.MaxConnectionsPerAddress = 0, 0
	cfg.Upstream = server.StringList{app.url}
	if set != nil {
		set(&cfg)
	}
	endpoint := servertest.Start(t, cfg)

	rig := &upstreamRig{g: newRawUpstream(&upstreamTally{}, n, 8, timeout), flushed: make(chan struct{}, 1)}
	rig.g.onFlush = func() {
		select {
		case rig.flushed <- struct{}{}:
		default:
		}
	}
	ctx := testCtx(t)
	conns := make([]*rawClient, n)
	for i := range conns {
		user := "u" + strconv.Itoa(i)
		c, err := dialRaw(ctx, auth.ClientURL(endpoint, "bench"), clientToken(t, rawTestKey, endpoint, user), user)
		if err != nil {
			t.Fatal(err)
		}
		go rig.g.read(i, c)
		t.Cleanup(func() { _ = c.Close() })
		conns[i] = c
	}
	rig.g.start(conns)
	rig.g.t.measure.Store(true)
	return rig
}

// await waits until cond holds, checking it after each read of the clients.
func (rig *upstreamRig) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-rig.flushed:
		case <-timeout:
			t.Fatalf("timed out waiting for %s: %d done, %d failed (%d overloaded), %d bad", what,
				rig.g.t.done.Load(), rig.g.t.failed.Load(), rig.g.t.overloaded.Load(), rig.g.t.bad.Load())
		}
	}
}

// ended is the calls that ended: answered or failed.
func (g *rawUpstream) ended() int64 { return g.t.done.Load() + g.t.failed.Load() }

// A call's answer is matched to it by invocation id and checked: only an echo of
// the call's own first argument counts as done; a wrong result, a result of another
// type and a completion error count as failed, and none of them as overloaded.
func TestRawUpstreamChecksAnswers(t *testing.T) {
	rig := startUpstreamRig(t, 3, 10*time.Second, nil, func(_ context.Context, ic *functions.InvocationContext) (any, error) {
		v, err := int64Arg(ic.Arguments[0])
		if err != nil {
			return nil, err
		}
		switch v % 4 {
		case 1:
			return v + 1, nil
		case 2:
			return nil, errors.New("no echo today")
		case 3:
			return "text", nil
		}
		return v, nil
	})
	g := rig.g
	base := time.Now().Add(-time.Millisecond).UnixNano() &^ 3
	for k := range 40 {
		// Several calls in flight on each connection, answered in any order.
		g.send(g.live[k%len(g.live)], time.Unix(0, base+int64(k)))
	}
	rig.await(t, "40 calls", func() bool { return g.ended() == 40 })
	if d, f, o, b := g.t.done.Load(), g.t.failed.Load(), g.t.overloaded.Load(), g.t.bad.Load(); d != 10 || f != 30 || o != 0 || b != 0 {
		t.Fatalf("%d done, %d failed, %d overloaded, %d bad; want 10, 30, 0, 0", d, f, o, b)
	}
	if h := g.t.rec.Snapshot(); h.Count() != 10 || h.Max() <= 0 {
		t.Fatalf("%d latencies recorded (max %v), want 10", h.Count(), h.Max())
	}
	if g.late.Count() != 40 {
		t.Fatalf("lateness of %d calls recorded, want 40", g.late.Count())
	}
	for _, rc := range g.live {
		if rc.head != rc.next {
			t.Fatalf("client %d: calls %d to %d still in flight", rc.i, rc.head, rc.next)
		}
	}
}

// An invocation the server refuses as overloaded counts as such; a call without an
// answer fails at the sweep after its time-out, and its late answer is not counted.
func TestRawUpstreamOverloadedAndTimeout(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	const hold = 7 // a call whose first argument ends in 7 waits for release
	timeout := 5 * time.Second
	rig := startUpstreamRig(t, 2, timeout, func(c *server.Config) {
		c.UpstreamMaxInFlightPerEvent, c.UpstreamSlotWait = 1, 0
	}, func(ctx context.Context, ic *functions.InvocationContext) (any, error) {
		v, err := int64Arg(ic.Arguments[0])
		if err != nil {
			return nil, err
		}
		if v%10 == hold {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return v, nil
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	g := rig.g
	base := time.Now().Add(-time.Millisecond).UnixNano()/10*10 + hold
	g.send(g.live[0], time.Unix(0, base)) // holds the event's one slot
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the function app got no call")
	}
	g.send(g.live[1], time.Unix(0, base+1))
	rig.await(t, "the refusal", func() bool { return g.ended() == 1 })
	if o := g.t.overloaded.Load(); o != 1 {
		t.Fatalf("%d overloaded, want 1 (last error %v)", o, g.t.lastErr.Load())
	}

	g.sweep(time.Now()) // not yet due to fail
	if f := g.t.failed.Load(); f != 1 {
		t.Fatalf("%d failed before the time-out, want 1", f)
	}
	g.sweep(time.Unix(0, base).Add(timeout + time.Millisecond))
	if f := g.t.failed.Load(); f != 2 || !errors.Is(g.t.lastErr.Load(), g.errLate) {
		t.Fatalf("%d failed after the time-out (last error %v), want 2", f, g.t.lastErr.Load())
	}

	// The held call's answer comes now, after its time-out: it counts neither as
	// done nor as a message the bench cannot read.
	close(release)
	rig.await(t, "the late answer", func() bool { return g.t.stale.Load() == 1 })
	if d, f, o, b := g.t.done.Load(), g.t.failed.Load(), g.t.overloaded.Load(), g.t.bad.Load(); d != 0 || f != 2 || o != 1 || b != 0 {
		t.Fatalf("%d done, %d failed, %d overloaded, %d bad; want 0, 2, 1, 0", d, f, o, b)
	}
}

// A caller's ring holds any number of calls in flight, answered in any order; the
// sweep ends the expired ones at its head, or all of them once the connection ended.
func TestRawCallerRing(t *testing.T) {
	rc := &rawCaller{due: make([]int64, 4)}
	for d := int64(1); d <= 10; d++ {
		if seq := rc.push(d * 100); seq != uint64(d-1) {
			t.Fatalf("push %d: sequence %d", d, seq)
		}
	}
	if len(rc.due) != 16 {
		t.Fatalf("ring of %d, want 16", len(rc.due))
	}
	if due, ok := rc.take(3); !ok || due != 400 {
		t.Fatalf("take(3) = %d, %v", due, ok)
	}
	if _, ok := rc.take(3); ok {
		t.Fatal("call 3 ended twice")
	}
	if _, ok := rc.take(10); ok {
		t.Fatal("call 10 was never made")
	}
	if due, ok := rc.take(0); !ok || due != 100 || rc.head != 1 {
		t.Fatalf("take(0) = %d, %v; head %d", due, ok, rc.head)
	}
	// Calls 1 and 2 (due 200, 300) expire; 3 ended already; 4 (500) is not due.
	if n := rc.expire(450, false); n != 2 || rc.head != 4 {
		t.Fatalf("expired %d, head %d; want 2, 4", n, rc.head)
	}
	if n := rc.expire(0, true); n != 6 || rc.head != rc.next {
		t.Fatalf("expired %d of the rest, head %d of %d", n, rc.head, rc.next)
	}
	if seq := rc.push(1100); seq != 10 || len(rc.due) != 16 {
		t.Fatalf("push after: sequence %d, ring %d", seq, len(rc.due))
	}
}

func TestParseHubReply(t *testing.T) {
	for _, c := range []struct {
		rec           string
		ok            bool
		typ           int64
		id, res, errT string
	}{
		{`{"type":3,"invocationId":"12","result":1733241600000000000}`, true, 3, "12", "1733241600000000000", ""},
		{`{"type":3,"invocationId":"12","error":"Invocation failed, upstream overloaded"}`, true, 3, "12", "", `"Invocation failed, upstream overloaded"`},
		// Not as the server writes it: read member by member.
		{`{"type":3,"invocationId":"7","result":"x}"}`, true, 3, "7", `"x}"`, ""},
		{`{"type":3,"headers":{"a":"b"},"invocationId":"7","result":-5}`, true, 3, "7", "-5", ""},
		{`{"invocationId":"8","type":3,"error":"say \"no\""}`, true, 3, "8", "", `"say \"no\""`},
		{`{"type":3,"invocationId":"9"}`, true, 3, "9", "", ""},
		{`{"type":6}`, true, 6, "", "", ""},
		{`{"type":7,"error":"bye"}`, true, 7, "", "", `"bye"`},
		{`{"type":3,"invocationId":"12","result":1`, false, 0, "", "", ""},
		{`[3]`, false, 0, "", "", ""},
		{`{"invocationId":"12"}`, false, 0, "", "", ""},
	} {
		m, ok := parseHubReply([]byte(c.rec))
		if ok != c.ok || (ok && (m.typ != c.typ || string(m.id) != c.id || string(m.result) != c.res || string(m.errText) != c.errT)) {
			t.Errorf("parseHubReply(%s) = %d %q %q %q, %v", c.rec, m.typ, m.id, m.result, m.errText, ok)
		}
	}
}
