package server

import (
	"sync"
	"time"
)

// timerSweep is the lifecycle timer of every connection (negotiate, handshake and
// client timeouts, keep-alives, the write timeout, token expiry): one goroutine looks at
// all deadlines every period and runs the due connections' onTimer, each on a
// goroutine of its own as time.AfterFunc would. A runtime timer per connection cost
// about 150 bytes of an idle connection's ~2 KB (docs/performance.md, S4); here a
// connection costs a slot in two slices. Deadlines are met up to one period late;
// the period is a tenth of the shortest configured timeout, at most
// maxSweepPeriod. The goroutine runs only while some connection is armed.
type timerSweep struct {
	s *Server

	mu    sync.Mutex
	conns []*conn // the armed connections; conns[c.sweepSlot-1] == c
	at    []int64 // at[i]: when conns[i] is due, unix ns; 0 = fired, not re-armed yet
	stop  chan struct{}
}

// maxSweepPeriod bounds how late a deadline may be met with long timeouts.
const maxSweepPeriod = 250 * time.Millisecond

// period is a tenth of the shortest timeout the sweep serves, within [1ms, maxSweepPeriod].
func (w *timerSweep) period() time.Duration {
	cfg := &w.s.cfg
	shortest := maxSweepPeriod * 10
	for _, d := range []time.Duration{cfg.NegotiateTimeout, cfg.HandshakeTimeout, cfg.KeepAliveInterval, cfg.ClientTimeout, cfg.WriteTimeout, w.s.lpCloseGrace} {
		if d > 0 {
			shortest = min(shortest, d)
		}
	}
	return max(shortest/10, time.Millisecond)
}

// arm sets c's deadline (unix ns), adding c to the sweep. conn.mu is held (the lock
// order is conn.mu, then w.mu).
func (w *timerSweep) arm(c *conn, at int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.sweepSlot == 0 {
		w.conns = append(w.conns, c)
		c.sweepSlot = int32(len(w.conns))
		w.at = append(w.at, at)
		if w.stop == nil {
			w.stop = make(chan struct{})
			go w.run(w.stop, w.period())
		}
		return
	}
	w.at[c.sweepSlot-1] = at
}

// disarm takes c out of the sweep; conn.mu is held.
func (w *timerSweep) disarm(c *conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.sweepSlot == 0 {
		return
	}
	i, last := c.sweepSlot-1, int32(len(w.conns)-1)
	if i != last {
		moved := w.conns[last]
		w.conns[i], w.at[i] = moved, w.at[last]
		moved.sweepSlot = i + 1
	}
	w.conns[last] = nil
	w.conns, w.at = w.conns[:last], w.at[:last]
	c.sweepSlot = 0
	if last == 0 {
		close(w.stop)
		w.stop = nil
		// Do not pin the capacity of a crowd that is gone.
		w.conns, w.at = nil, nil
	}
}

func (w *timerSweep) run(stop <-chan struct{}, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	var due []*conn
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			due = w.collect(now.UnixNano(), due)
			for i, c := range due {
				go c.onTimer()
				due[i] = nil
			}
		}
	}
}

// collect appends the connections due at now to due[:0] and marks them fired.
func (w *timerSweep) collect(now int64, due []*conn) []*conn {
	due = due[:0]
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, at := range w.at {
		if at != 0 && at <= now {
			w.at[i] = 0
			due = append(due, w.conns[i])
		}
	}
	return due
}
