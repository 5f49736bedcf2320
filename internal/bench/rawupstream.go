package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/internal/jsonscan"
)

// upstreamCallTimeout is how long a call of the upstream scenario waits for its
// answer; one without an answer by then counts as failed.
const upstreamCallTimeout = 10 * time.Second

// upstreamSweep is how often the raw generator fails the calls past their time-out:
// they count up to this much after it.
const upstreamSweep = 100 * time.Millisecond

// upstreamTally counts the upstream scenario's calls that end in the measured
// window: answered as they should be (with their latency from their due time),
// refused as overloaded, or failed otherwise.
type upstreamTally struct {
	measure                       atomic.Bool
	rec                           Recorder
	done, failed, overloaded, bad counter
	// stale counts answers to calls that had ended (failed at their time-out).
	stale   counter
	lastErr lastError
}

// refused counts a call refused as overloaded; err (made only when wanted) is the
// last error when no other failure was.
func (t *upstreamTally) refused(err func() error) {
	t.failed.Add(1)
	t.overloaded.Add(1)
	if t.lastErr.Load() == nil {
		t.lastErr.Store(err())
	}
}

// fail counts n calls failed with err.
func (t *upstreamTally) fail(n int64, err error) {
	t.failed.Add(n)
	t.lastErr.Store(err)
}

// fill puts the counts in r.
func (t *upstreamTally) fill(r *Result, d time.Duration, log *slog.Logger) {
	r.setLatency(t.rec.Snapshot())
	r.Deliveries = t.done.Load()
	r.Sent = r.Deliveries + t.failed.Load()
	r.DeliveriesPerS = float64(r.Deliveries) / d.Seconds()
	r.addError("invoke_overloaded", t.overloaded.Load())
	r.addError("invoke_failed", t.failed.Load()-t.overloaded.Load())
	r.addError("bad_messages", t.bad.Load())
	if err := t.lastErr.Load(); err != nil {
		log.Warn("invocation failures", slog.Int64("failed", t.failed.Load()), slog.Any("lastError", err))
	}
}

// rawUpstream is the upstream scenario's open loop on raw clients (rawClient, JSON
// over WebSockets). client.Conn cost the load generator a goroutine, a channel, a
// context and its timer per call, and at twice S2's rate (22,000 calls/s, most of
// them refused) it was the bound: its calls were seconds late and it took 1–1.5
// cores (docs/performance.md, S2). Here one goroutine, the scheduler, writes every
// call's frame itself into a reused buffer, and each connection's read loop
// (readRecords) matches the completions it reads to their calls by invocation id: the
// id is a per-connection sequence number that indexes a ring of due times. The
// time-out is a sweep over the rings, not a timer per call. Per call: one write, a
// share of a read, no allocation.
type rawUpstream struct {
	t       *upstreamTally
	timeout time.Duration
	errLate error // a call without an answer within timeout
	callers []*rawCaller
	live    []*rawCaller // those connected (start)
	payload []byte       // the second argument, a JSON string
	// Scheduler only.
	text, frame []byte
	late        Histogram // how late calls left, in the measured window
	// onFlush, when set (tests), runs after a read loop took a read's answers.
	onFlush func()
}

// rawCaller is one connection of rawUpstream, and the sink of its read loop.
type rawCaller struct {
	g *rawUpstream
	c *rawClient
	i int

	mu sync.Mutex
	// due holds the due times (Unix ns) of calls next-len(due) .. next-1 at
	// due[seq&(len(due)-1)]; 0 once the call is answered or failed. Calls before head
	// are all over. len(due) is a power of two, grown when full.
	due        []int64
	head, next uint64

	// The read loop's latencies of one read, recorded together.
	n   int
	lat [64]time.Duration
}

// rawCallerRing is a caller's first ring: at S2's 12/s per client it holds 5 s of
// calls; a ring that fills doubles.
const rawCallerRing = 64

// newRawUpstream prepares the generator for n clients with a payload-byte string
// argument; calls without an answer within timeout fail.
func newRawUpstream(t *upstreamTally, n, payload int, timeout time.Duration) *rawUpstream {
	g := &rawUpstream{t: t, timeout: timeout, callers: make([]*rawCaller, n),
		errLate: fmt.Errorf("bench: invocation: no answer within %v", timeout),
		payload: []byte(`"` + strings.Repeat("x", payload) + `"`)}
	for i := range g.callers {
		g.callers[i] = &rawCaller{g: g, i: i, due: make([]int64, rawCallerRing)}
	}
	return g
}

// read is client i's read loop (connectRaw's read).
func (g *rawUpstream) read(i int, c *rawClient) { c.readRecords(g.callers[i], rawReadBuffer) }

// start takes the connected clients (conns[i] is client i, nil if it failed); their
// read loops run already.
func (g *rawUpstream) start(conns []*rawClient) {
	for i, c := range conns {
		if c != nil {
			g.callers[i].c = c
			g.live = append(g.live, g.callers[i])
		}
	}
}

// run is the open loop: calls due at rate per second over the live clients in turn,
// until ctx ends. It wakes at most every openLoopTick and sends every call due by
// then, so a call leaves at most about a tick late (late records how late, and the
// latency still counts from the due time). The sweep for calls past their time-out
// runs between ticks, every upstreamSweep.
func (g *rawUpstream) run(ctx context.Context, rate float64) {
	if len(g.live) == 0 {
		return
	}
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	swept := next
	tick := time.NewTimer(0)
	defer tick.Stop()
	for k := 0; ctx.Err() == nil; {
		now := time.Now()
		for ; !next.After(now); k++ {
			g.send(g.live[k%len(g.live)], next)
			next = next.Add(interval)
		}
		if now.Sub(swept) >= upstreamSweep {
			g.sweep(now)
			swept = now
		}
		tick.Reset(max(time.Until(next), openLoopTick))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// echoPrefix starts every call's frame text up to its invocation id.
const echoPrefix = `{"type":1,"invocationId":"`

// send writes one call of rc, due at due: echo(due in Unix ns, payload), whose
// answer must be its first argument. A call on a connection that ended, or whose
// write fails, fails at once.
func (g *rawUpstream) send(rc *rawCaller, due time.Time) {
	measure := g.t.measure.Load()
	select {
	case <-rc.c.done:
		if measure {
			g.t.fail(1, fmt.Errorf("bench: invocation on a closed connection: %w", rc.c.Err()))
		}
		return
	default:
	}
	d := due.UnixNano()
	rc.mu.Lock()
	seq := rc.push(d)
	rc.mu.Unlock()
	b := append(g.text[:0], echoPrefix...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `","target":"echo","arguments":[`...)
	b = strconv.AppendInt(b, d, 10)
	b = append(b, ',')
	b = append(b, g.payload...)
	b = append(b, "]}\x1e"...)
	g.text = b
	// A client must mask its frames; the mask need not be secret here (the server is
	// ours), and crypto/rand is a system call per frame.
	m := rand.Uint32()
	g.frame = appendMaskedFrame(g.frame[:0], opText, b, [4]byte{byte(m), byte(m >> 8), byte(m >> 16), byte(m >> 24)})
	if measure {
		g.late.Record(time.Since(due))
	}
	if err := rc.c.writeFrame(g.frame); err != nil {
		rc.mu.Lock()
		_, pending := rc.take(seq)
		rc.mu.Unlock()
		if pending && g.t.measure.Load() {
			g.t.fail(1, fmt.Errorf("bench: sending an invocation: %w", err))
		}
	}
}

// sweep fails the calls due before now-timeout that have no answer, and every call
// in flight on a connection that ended.
func (g *rawUpstream) sweep(now time.Time) {
	limit := now.Add(-g.timeout).UnixNano()
	for _, rc := range g.live {
		ended := false
		select {
		case <-rc.c.done:
			ended = true
		default:
		}
		rc.mu.Lock()
		n := rc.expire(limit, ended)
		rc.mu.Unlock()
		if n == 0 || !g.t.measure.Load() {
			continue
		}
		if ended {
			g.t.fail(n, fmt.Errorf("bench: the connection ended with calls in flight: %w", rc.c.Err()))
		} else {
			g.t.fail(n, g.errLate)
		}
	}
}

// push adds a call due at d and returns its sequence number (mu held).
func (rc *rawCaller) push(d int64) uint64 {
	if rc.next-rc.head == uint64(len(rc.due)) {
		grown := make([]int64, 2*len(rc.due))
		for s := rc.head; s < rc.next; s++ {
			grown[s&uint64(len(grown)-1)] = rc.due[s&uint64(len(rc.due)-1)]
		}
		rc.due = grown
	}
	seq := rc.next
	rc.due[seq&uint64(len(rc.due)-1)] = d
	rc.next++
	return seq
}

// take ends call seq and returns its due time; pending is false when there is no
// such call in flight (answered, failed by the sweep, or never made; mu held).
func (rc *rawCaller) take(seq uint64) (due int64, pending bool) {
	if seq < rc.head || seq >= rc.next {
		return 0, false
	}
	slot := &rc.due[seq&uint64(len(rc.due)-1)]
	due, *slot = *slot, 0
	for rc.head < rc.next && rc.due[rc.head&uint64(len(rc.due)-1)] == 0 {
		rc.head++
	}
	return due, due != 0
}

// expire ends the calls in flight due before limit (Unix ns), or all of them, and
// returns how many it ended (mu held). Calls are due in the order they were sent, so
// the expired ones are at the head.
func (rc *rawCaller) expire(limit int64, all bool) int64 {
	var n int64
	for ; rc.head < rc.next; rc.head++ {
		slot := &rc.due[rc.head&uint64(len(rc.due)-1)]
		if *slot == 0 {
			continue
		}
		if !all && *slot > limit {
			break
		}
		*slot = 0
		n++
	}
	return n
}

// record takes one message from the server (rawSink): a completion ends its call;
// pings and anything else the client does not use are ignored; a Close ends the
// connection.
func (rc *rawCaller) record(rec []byte, now time.Time) error {
	m, ok := parseHubReply(rec)
	switch {
	case !ok:
		rc.bad()
		return nil
	case m.typ == 7:
		return fmt.Errorf("bench: the server closed the connection: %s", rec)
	case m.typ != 3:
		return nil
	}
	seq, n := leadingInt(m.id)
	if n == 0 || n != len(m.id) || seq < 0 {
		rc.bad()
		return nil
	}
	rc.mu.Lock()
	known := uint64(seq) < rc.next
	due, pending := rc.take(uint64(seq))
	rc.mu.Unlock()
	switch {
	case !known:
		rc.bad() // an answer to no call
		return nil
	case !rc.g.t.measure.Load():
		return nil
	case !pending:
		rc.g.t.stale.Add(1) // it came after its time-out, and failed then
		return nil
	}
	t := rc.g.t
	switch {
	case m.errText != nil:
		if bytes.Contains(m.errText, []byte("overloaded")) {
			t.refused(func() error { return fmt.Errorf("bench: invocation refused: %s", m.errText) })
		} else {
			t.fail(1, fmt.Errorf("bench: invocation failed: %s", m.errText))
		}
	case m.result == nil:
		t.fail(1, errors.New("bench: echo answered without a result"))
	default:
		v, n := leadingInt(m.result)
		if n == 0 || n != len(m.result) || v != due {
			t.fail(1, fmt.Errorf("bench: echo returned %.40s, not its argument %d", m.result, due))
			return nil
		}
		if rc.n == len(rc.lat) {
			rc.flush(now)
		}
		rc.lat[rc.n] = now.Sub(time.Unix(0, due))
		rc.n++
	}
	return nil
}

// flush records the answers of a read (rawSink).
func (rc *rawCaller) flush(time.Time) {
	if rc.n > 0 {
		rc.g.t.rec.RecordAll(rc.i, rc.lat[:rc.n])
		rc.g.t.done.Add(int64(rc.n))
		rc.n = 0
	}
	if rc.g.onFlush != nil {
		rc.g.onFlush()
	}
}

// bad counts a message the client cannot read (rawSink).
func (rc *rawCaller) bad() {
	if rc.g.t.measure.Load() {
		rc.g.t.bad.Add(1)
	}
}

// hubReply is what the raw upstream client reads of a message from the server.
type hubReply struct {
	typ     int64
	id      []byte // a completion's invocationId, unquoted (nil if it has escapes)
	result  []byte // its result as a raw JSON value; nil without one
	errText []byte // its error as a raw JSON string; nil without one
}

var (
	completionPrefix = []byte(`{"type":3,"invocationId":"`)
	resultKey        = []byte(`","result":`)
	errorKey         = []byte(`","error":`)
	hubPing          = []byte(`{"type":6}`)
)

// parseHubReply reads a JSON hub message. A completion as the server writes it
// (protocol.appendJSONMessage, no headers) with an integer result or an error without
// escapes is read without a scan of its JSON; anything else must be valid JSON and is
// read member by member.
func parseHubReply(rec []byte) (m hubReply, ok bool) {
	if rest, found := bytes.CutPrefix(rec, completionPrefix); found && len(rest) > 0 && rest[len(rest)-1] == '}' {
		rest = rest[:len(rest)-1]
		if q := bytes.IndexByte(rest, '"'); q > 0 {
			m.typ, m.id = 3, rest[:q]
			if v, ok := bytes.CutPrefix(rest[q:], resultKey); ok {
				if plainInt(v) {
					m.result = v
					return m, true
				}
			} else if v, ok := bytes.CutPrefix(rest[q:], errorKey); ok && plainString(v) {
				m.errText = v
				return m, true
			}
			m = hubReply{}
		}
	}
	if bytes.Equal(rec, hubPing) {
		return hubReply{typ: 6}, true
	}
	if !json.Valid(rec) {
		return m, false
	}
	m.typ = -1
	isObject := jsonscan.Members(rec, func(name, value []byte) {
		switch string(name) {
		case `"type"`:
			if v, n := leadingInt(value); n > 0 && n == len(value) {
				m.typ = v
			}
		case `"invocationId"`:
			m.id = stringValue(value)
		case `"result"`:
			m.result = value
		case `"error"`:
			if value[0] == '"' {
				m.errText = value
			}
		}
	})
	return m, isObject && m.typ >= 0
}

// plainString reports whether v is a JSON string without escapes and nothing else.
func plainString(v []byte) bool {
	return len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v[1:len(v)-1], '"') < 0 && bytes.IndexByte(v, '\\') < 0
}

// plainInt reports whether v is a JSON integer and nothing else.
func plainInt(v []byte) bool {
	_, n := leadingInt(v)
	return n > 0 && n == len(v)
}
