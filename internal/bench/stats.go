package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method, or 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// Histogram records durations with a relative error below 0.2 % (log-linear buckets
// of microseconds: exact below 1,024 µs, then 512 sub-buckets per power of two). It
// is not safe for concurrent use; see Recorder.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	subBits    = 9 // 512 sub-buckets per power of two
	linearTop  = 1 << (subBits + 1)
	maxBuckets = linearTop + (64-subBits-1)*(1<<subBits)
)

// bucketOf maps a value in µs to its bucket.
func bucketOf(us uint64) int {
	if us < linearTop {
		return int(us)
	}
	e := bits.Len64(us) - (subBits + 1) // shift that leaves subBits+1 significant bits
	return linearTop + (e-1)<<subBits + int(us>>e) - (1 << subBits)
}

// bucketValue is the upper bound (in µs) of bucket i's values.
func bucketValue(i int) uint64 {
	if i < linearTop {
		return uint64(i)
	}
	i -= linearTop
	e := i>>subBits + 1
	m := uint64(i&(1<<subBits-1)) + 1<<subBits
	return (m+1)<<e - 1
}

// Record adds d (negative durations count as 0).
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	b := bucketOf(uint64(d / time.Microsecond))
	if b >= len(h.counts) {
		h.counts = slices.Grow(h.counts, b+1-len(h.counts))[:b+1]
	}
	h.counts[b]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds the records of o.
func (h *Histogram) Merge(o *Histogram) {
	if len(o.counts) > len(h.counts) {
		h.counts = slices.Grow(h.counts, len(o.counts)-len(h.counts))[:len(o.counts)]
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count returns the number of records.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest record.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean returns the average record.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the p-th percentile (0 < p <= 100) by nearest rank, as the upper
// bound of its bucket (whole microseconds) capped by the maximum.
func (h *Histogram) Quantile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	if rank == h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketValue(i))*time.Microsecond, h.max)
		}
	}
	return h.max
}

// Recorder is a Histogram for many goroutines: records go to one of several
// shards so that concurrent receivers rarely contend.
type Recorder struct {
	shards [64]struct {
		mu sync.Mutex
		h  Histogram
		_  [40]byte // keep shards on separate cache lines
	}
}

// Record adds d to shard (any int; receivers pass their own index).
func (r *Recorder) Record(shard int, d time.Duration) {
	s := &r.shards[uint(shard)%uint(len(r.shards))]
	s.mu.Lock()
	s.h.Record(d)
	s.mu.Unlock()
}

// RecordAll adds every d to shard under one lock.
func (r *Recorder) RecordAll(shard int, ds []time.Duration) {
	s := &r.shards[uint(shard)%uint(len(r.shards))]
	s.mu.Lock()
	for _, d := range ds {
		s.h.Record(d)
	}
	s.mu.Unlock()
}

// Snapshot returns the merged histogram.
func (r *Recorder) Snapshot() *Histogram {
	var h Histogram
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		h.Merge(&s.h)
		s.mu.Unlock()
	}
	return &h
}

// lastError keeps the last of the errors many goroutines report. An atomic.Value panics
// when values of different concrete types are stored in it, and errors of one run differ
// (a Completion error, then a context deadline): S2 at 12,000/s offered on a loaded
// machine crashed the bench that way.
type lastError struct{ p atomic.Pointer[error] }

func (l *lastError) Store(err error) { l.p.Store(&err) }

// Load returns the last error stored, or nil.
func (l *lastError) Load() error {
	if p := l.p.Load(); p != nil {
		return *p
	}
	return nil
}

// histogramJSON is a Histogram on the wire between the bench and its connect
// workers: the buckets that hold records, as (bucket, count) pairs.
type histogramJSON struct {
	Buckets [][2]uint64   `json:"buckets"`
	N       uint64        `json:"n"`
	Sum     time.Duration `json:"sum"`
	Max     time.Duration `json:"max"`
}

// MarshalJSON implements json.Marshaler.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	w := histogramJSON{Buckets: [][2]uint64{}, N: h.n, Sum: h.sum, Max: h.max}
	for i, c := range h.counts {
		if c != 0 {
			w.Buckets = append(w.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var w histogramJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*h = Histogram{n: w.N, sum: w.Sum, max: w.Max}
	var n uint64
	for _, bc := range w.Buckets {
		if bc[0] >= maxBuckets {
			return fmt.Errorf("bench: histogram bucket %d out of range", bc[0])
		}
		i := int(bc[0])
		if i >= len(h.counts) {
			h.counts = slices.Grow(h.counts, i+1-len(h.counts))[:i+1]
		}
		h.counts[i] += bc[1]
		n += bc[1]
	}
	if n != h.n {
		return fmt.Errorf("bench: histogram of %d records holds %d", h.n, n)
	}
	return nil
}
