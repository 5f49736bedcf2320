package transport

import (
	"net/http"
	"sync"
	"time"
)

// SetNoCacheHeaders sets the headers ASP.NET Core puts on every long-polling GET.
func SetNoCacheHeaders(h http.Header) {
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")
}

// WritePoll answers a poll with status 200 and the batch as application/octet-stream.
func WritePoll(w http.ResponseWriter, batch []byte) error {
	SetNoCacheHeaders(w.Header())
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(batch)
	return err
}

// Poller tracks the poll requests of one long-polling connection: at most one is
// current, a newer one replaces it, and the time the last one ended counts as client
// activity.
type Poller struct {
	mu      sync.Mutex
	current *Poll
	lastEnd time.Time
}

// Poll is one pending poll request.
type Poll struct {
	p        *Poller
	replaced chan struct{}
}

// Begin registers a new current poll, replacing (and signalling) the previous one.
func (p *Poller) Begin() *Poll {
	np := &Poll{p: p, replaced: make(chan struct{})}
	p.mu.Lock()
	if p.current != nil {
		close(p.current.replaced)
	}
	p.current = np
	p.mu.Unlock()
	return np
}

// Replaced is closed when a newer poll took this one's place.
func (pl *Poll) Replaced() <-chan struct{} { return pl.replaced }

// End marks the poll as finished at now.
func (pl *Poll) End(now time.Time) {
	pl.p.mu.Lock()
	if pl.p.current == pl {
		pl.p.current = nil
	}
	if now.After(pl.p.lastEnd) {
		pl.p.lastEnd = now
	}
	pl.p.mu.Unlock()
}

// Activity reports whether a poll is pending and when the last one ended.
func (p *Poller) Activity() (pending bool, lastEnd time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current != nil, p.lastEnd
}
