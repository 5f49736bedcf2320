package bench

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signalbox-io/signalbox/management"
	"github.com/signalbox-io/signalbox/protocol"
)

// receiver records deliveries of bench messages into the current phase (one
// measured window). Messages numbered below measureFrom belong to the warm-up or an
// earlier phase and are not recorded.
type receiver struct {
	cur         atomic.Pointer[phase]
	bad         counter
	measureFrom atomic.Int64
	track       *tracker // closed-loop broadcast only
}

// phase is what one measured window received.
type phase struct {
	rec       Recorder
	delivered counter
	last      atomic.Int64 // unix ns of the latest delivery
}

func newReceiver() *receiver {
	rv := &receiver{}
	rv.measureFrom.Store(math.MaxInt64)
	rv.cur.Store(&phase{})
	return rv
}

// begin starts a phase with the messages numbered from seq.
func (rv *receiver) begin(seq int64) *phase {
	ph := &phase{}
	rv.cur.Store(ph)
	rv.measureFrom.Store(seq)
	return ph
}

func (rv *receiver) handler(i int) func(args []protocol.Value) {
	return func(args []protocol.Value) {
		sent, seq, err := stamp(args)
		if err != nil || seq < 0 {
			rv.bad.Add(1)
			return
		}
		rv.record(i, sent, seq)
	}
}

// record counts the delivery of message seq, sent at sent, to client i.
func (rv *receiver) record(i int, sent time.Time, seq int64) {
	if rv.track != nil {
		rv.track.delivered(seq)
	}
	if seq < rv.measureFrom.Load() {
		return
	}
	ph := rv.cur.Load()
	now := time.Now()
	ph.rec.Record(i, now.Sub(sent))
	ph.delivered.Add(1)
	ph.last.Store(now.UnixNano())
}

// recordBatch is record for the messages of one read of client i, all received at
// now (sent and seq pair up): one lock of the latency recorder and one count for all.
func (rv *receiver) recordBatch(i int, now time.Time, sent, seq []int64) {
	if rv.track != nil {
		for _, q := range seq {
			rv.track.delivered(q)
		}
	}
	from := rv.measureFrom.Load()
	var d [64]time.Duration
	k := 0
	at := now.UnixNano()
	for j, q := range seq {
		if q < from {
			continue
		}
		if k == len(d) {
			rv.recordMeasured(i, at, d[:k])
			k = 0
		}
		d[k] = time.Duration(at - sent[j])
		k++
	}
	rv.recordMeasured(i, at, d[:k])
}

// recordMeasured adds latencies of client i received at (unix ns) to the phase.
func (rv *receiver) recordMeasured(i int, at int64, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	ph := rv.cur.Load()
	ph.rec.RecordAll(i, d)
	ph.delivered.Add(int64(len(d)))
	ph.last.Store(at)
}

// tracker tells the closed-loop publisher when every client received a message.
type tracker struct {
	need  int64
	slots [4096]atomic.Int64 // deliveries per message, by seq modulo the size
	done  chan int64
}

func newTracker(need int) *tracker {
	return &tracker{need: int64(need), done: make(chan int64, 4096)}
}

func (t *tracker) slot(seq int64) *atomic.Int64 { return &t.slots[seq%int64(len(t.slots))] }

func (t *tracker) delivered(seq int64) {
	if t.slot(seq).Add(1) == t.need {
		select {
		case t.done <- seq:
		default: // cannot happen with at most len(done) messages outstanding
		}
	}
}

// publisher sends numbered, timestamped messages.
type publisher struct {
	payload string
	send    func(ctx context.Context, args json.RawMessage) error
	next    int64        // next sequence number (only the publishing goroutine touches it)
	counted atomic.Bool  // whether results count (false during the warm-up)
	ok      atomic.Int64 // measured messages accepted
	failed  atomic.Int64
	skipped atomic.Int64
	// refused counts requests the server answered with 503 or 429 (overloaded: it
	// refused the message instead of leaving the caller waiting); they are not failed.
	refused atomic.Int64
	// slowest is the longest a measured request waited for its answer (ns), whatever
	// the answer.
	slowest atomic.Int64
	lastErr lastError
}

// reset zeroes the counts for a new phase.
func (p *publisher) reset() {
	p.ok.Store(0)
	p.failed.Store(0)
	p.skipped.Store(0)
	p.refused.Store(0)
	p.slowest.Store(0)
}

// publish sends message seq and reports whether the server accepted it.
func (p *publisher) publish(ctx context.Context, seq int64) bool {
	t0 := time.Now()
	args := json.RawMessage(`[` + strconv.FormatInt(t0.UnixNano(), 10) + `,` +
		strconv.FormatInt(seq, 10) + `,"` + p.payload + `"]`)
	err := p.send(ctx, args)
	if !p.counted.Load() {
		return err == nil
	}
	for d := int64(time.Since(t0)); ; {
		s := p.slowest.Load()
		if d <= s || p.slowest.CompareAndSwap(s, d) {
			break
		}
	}
	var re *management.ResponseError
	switch {
	case err == nil:
		p.ok.Add(1)
	case errors.As(err, &re) && (re.StatusCode == http.StatusServiceUnavailable || re.StatusCode == http.StatusTooManyRequests):
		p.refused.Add(1)
	default:
		p.failed.Add(1)
		p.lastErr.Store(err)
	}
	return err == nil
}

// runRate publishes at rate messages/s for d (open loop: a message due while
// maxInflight requests are pending is skipped and counted as an error).
func (p *publisher) runRate(ctx context.Context, d time.Duration, rate float64) {
	sem := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	end := start.Add(d)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var n int64
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		for due := int64(now.Sub(start).Seconds() * rate); n <= due; n++ {
			seq := p.next
			p.next++
			select {
			case sem <- struct{}{}:
			default:
				if p.counted.Load() {
					p.skipped.Add(1)
				}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				p.publish(ctx, seq)
			}()
		}
		next := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
		if next.After(end) {
			next = end
		}
		timer.Reset(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// runWindow publishes for d keeping window messages outstanding: the next message
// goes out when every client has received an earlier one (closed loop, the
// throughput the server sustains). A message not complete after drainTimeout
// stops being waited for; its missing deliveries count as errors.
func (p *publisher) runWindow(ctx context.Context, d time.Duration, window int, t *tracker) {
	var wg sync.WaitGroup
	defer wg.Wait()
	failed := make(chan int64, window)
	outstanding := make(map[int64]time.Time, window)
	end := time.Now().Add(d)
	start := func() {
		seq := p.next
		p.next++
		t.slot(seq).Store(0)
		outstanding[seq] = time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.publish(ctx, seq) {
				select {
				case failed <- seq:
				default: // the loop may be gone; an entry still outstanding expires
				}
			}
		}()
	}
	for range window {
		start()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	finish := func(seq int64) {
		if _, ok := outstanding[seq]; !ok {
			return
		}
		delete(outstanding, seq)
		if time.Now().Before(end) {
			start()
		}
	}
	for len(outstanding) > 0 {
		select {
		case <-ctx.Done():
			return
		case seq := <-t.done:
			finish(seq)
		case seq := <-failed:
			finish(seq)
		case now := <-tick.C:
			for seq, at := range outstanding {
				if now.Sub(at) > drainTimeout {
					finish(seq)
				}
			}
		}
	}
}

// runCallers runs callers concurrent request loops for d (closed loop: each
// caller sends its next request when the previous one was answered).
func (p *publisher) runCallers(ctx context.Context, d time.Duration, callers int) {
	var seq atomic.Int64
	seq.Store(p.next)
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The last request may finish after the window (bounded by the management
			// client's timeout): cutting it short would count an error.
			for time.Now().Before(end) && ctx.Err() == nil {
				p.publish(ctx, seq.Add(1)-1)
			}
		}()
	}
	wg.Wait()
	p.next = seq.Load()
}
