package upstream

import "time"

// Worker goroutines are kept parked for a while after their session's work is done and
// handed the next session that needs one. A fresh goroutine per burst of a session grew
// its stack on every call (the HTTP client path needs more than the initial stack):
// runtime.newstack/copystack took 7-10 % of the server's CPU in profiles of the upstream
// benchmark.
const (
	// maxParkedWorkers bounds the goroutines kept waiting for work (each holds its grown
	// stack); peaks beyond it start new goroutines, which exit when done.
	maxParkedWorkers = 256
	// workerIdle is how long a parked worker waits for work before it exits.
	workerIdle = 10 * time.Second
)

// startWorker runs s.work on a parked worker if one waits, else on a new goroutine.
func (u *Upstream) startWorker(s *Session) {
	select {
	case u.handoff <- s:
	default:
		go u.worker(s)
	}
}

// worker runs s.work, then parks (within maxParkedWorkers) to run the next session
// handed to it, until it has waited workerIdle or the Upstream is closed.
func (u *Upstream) worker(s *Session) {
	var idle *time.Timer
	for {
		s.work()
		if u.parked.Add(1) > maxParkedWorkers {
			u.parked.Add(-1)
			return
		}
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case s = <-u.handoff:
			u.parked.Add(-1)
		case <-idle.C:
			u.parked.Add(-1)
			return
		case <-u.closed:
			u.parked.Add(-1)
			idle.Stop()
			return
		}
	}
}
