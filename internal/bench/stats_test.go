package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

func TestPercentile(t *testing.T) {
	ds := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x)
		}
		return out
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ds(7), 1, 7},
		{ds(7), 100, 7},
		{ds(1, 2, 3, 4), 50, 2},
		{ds(1, 2, 3, 4), 51, 3},
		{ds(1, 2, 3, 4), 100, 4},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0, 1},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("Percentile(%v, %g) = %v, want %v", tt.sorted, tt.p, got, tt.want)
		}
	}
}

func TestBucketsRoundTrip(t *testing.T) {
	// Every value falls in a bucket whose bounds contain it, buckets are ordered, and
	// the upper bound is within 0.2 % of the value.
	prev := -1
	for _, us := range []uint64{0, 1, 1023, 1024, 1025, 2047, 2048, 4095, 4096, 1e6, 123456789, 1 << 40} {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucket of %d is %d, below %d", us, b, prev)
		}
		prev = b
		hi := bucketValue(b)
		if hi < us || float64(hi-us) > 0.002*float64(us) {
			t.Fatalf("bucket %d of %d has upper bound %d", b, us, hi)
		}
		if b > 0 && bucketValue(b-1) >= us {
			t.Fatalf("previous bucket of %d already reaches %d", us, bucketValue(b-1))
		}
	}
	if bucketOf(1<<62) >= maxBuckets {
		t.Fatalf("bucket of 2^62 µs is %d, beyond %d", bucketOf(1<<62), maxBuckets)
	}
}

func TestHistogramMatchesExactPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var all []time.Duration
	for range 100000 {
		// Log-normal-ish latencies from 10 µs to seconds.
		d := time.Duration(float64(10*time.Microsecond) * (1 + r.ExpFloat64()*r.ExpFloat64()*300))
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, p := range []float64{1, 50, 90, 99, 99.9, 100} {
		exact := Percentile(all, p)
		got := h.Quantile(p)
		tol := time.Duration(float64(exact)*0.002) + time.Microsecond
		if got < exact-time.Microsecond || got > exact+tol {
			t.Errorf("p%g = %v, exact %v (tolerance %v)", p, got, exact, tol)
		}
	}
	if h.Count() != uint64(len(all)) || h.Max() != all[len(all)-1] {
		t.Fatalf("count %d max %v, want %d %v", h.Count(), h.Max(), len(all), all[len(all)-1])
	}
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	if h.Mean() != sum/time.Duration(len(all)) {
		t.Fatalf("mean %v, want %v", h.Mean(), sum/time.Duration(len(all)))
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(50) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram reports values")
	}
	h.Record(-time.Second) // clock skew between hosts: counts as 0
	h.Record(1500 * time.Nanosecond)
	if got := h.Quantile(50); got != 0 {
		t.Fatalf("p50 = %v, want 0", got)
	}
	if got := h.Quantile(100); got != 1500*time.Nanosecond {
		t.Fatalf("p100 = %v, want the maximum 1.5µs", got)
	}
}

// A connect worker's histogram reaches the bench whole: every quantile, the count,
// mean and maximum as recorded.
func TestHistogramJSON(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		h.Record(time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond)))
	}
	h.Record(40 * time.Second)
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	var got Histogram
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Count() != h.Count() || got.Mean() != h.Mean() || got.Max() != h.Max() {
		t.Fatalf("count %d mean %v max %v, want %d %v %v", got.Count(), got.Mean(), got.Max(), h.Count(), h.Mean(), h.Max())
	}
	for _, p := range []float64{1, 50, 90, 99, 99.9, 100} {
		if got.Quantile(p) != h.Quantile(p) {
			t.Fatalf("p%g = %v, want %v", p, got.Quantile(p), h.Quantile(p))
		}
	}
	var empty Histogram
	if b, err = json.Marshal(&empty); err != nil || json.Unmarshal(b, &got) != nil || got.Count() != 0 || got.Quantile(50) != 0 {
		t.Fatalf("empty: %s, %v, count %d", b, err, got.Count())
	}
	for _, bad := range []string{
		`{"buckets":[[99999999,1]],"n":1}`, // no such bucket
		`{"buckets":[[3,2]],"n":1}`,        // counts that do not add up
	} {
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestRecorderMergesShards(t *testing.T) {
	var r Recorder
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			for i := range 1000 {
				r.Record(g, time.Duration(i)*time.Millisecond)
			}
			done <- struct{}{}
		}()
	}
	for range 8 {
		<-done
	}
	h := r.Snapshot()
	if h.Count() != 8000 {
		t.Fatalf("count %d", h.Count())
	}
	if p := h.Quantile(50); p < 499*time.Millisecond || p > 501*time.Millisecond {
		t.Fatalf("p50 = %v", p)
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("1234 (sig nal) box)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 1000000 500 18446744073709551615\n")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3*time.Second {
		t.Fatalf("cpu = %v, %v; want 3s", cpu, err)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1")); err == nil {
		t.Fatal("short stat accepted")
	}
	if _, err := parseStatCPU([]byte("no name")); err == nil {
		t.Fatal("stat without name accepted")
	}
	rss, err := parseStatusRSS([]byte("Name:\tsignalbox\nVmPeak:\t  1 kB\nVmRSS:\t   20480 kB\nThreads: 8\n"))
	if err != nil || rss != 20<<20 {
		t.Fatalf("rss = %d, %v", rss, err)
	}
	if _, err := parseStatusRSS([]byte("Name:\tx\n")); err == nil {
		t.Fatal("status without VmRSS accepted")
	}
	if _, err := parseStatusRSS([]byte("VmRSS:\t12 MB\n")); err == nil {
		t.Fatal("unexpected unit accepted")
	}
}

func FuzzParseProc(f *testing.F) {
	f.Add([]byte("1 (a) S 1 1 1 0 -1 0 0 0 0 0 5 6 0 0"), []byte("VmRSS:\t1 kB\n"))
	f.Add([]byte("1 ()) R"), []byte("VmRSS:"))
	f.Fuzz(func(t *testing.T, stat, status []byte) {
		if cpu, err := parseStatCPU(stat); err == nil && cpu < 0 {
			t.Skip() // negative tick counts are not produced by the kernel
		}
		_, _ = parseStatusRSS(status)
	})
}

func TestStamp(t *testing.T) {
	args := []protocol.Value{protocol.JSONValue([]byte("1700000000000000000")), protocol.JSONValue([]byte("7")), protocol.JSONValue([]byte(`"x"`))}
	sent, seq, err := stamp(args)
	if err != nil || seq != 7 || sent.UnixNano() != 1700000000000000000 {
		t.Fatalf("stamp = %v %d %v", sent, seq, err)
	}
	// The same through MessagePack.
	mp := make([]protocol.Value, len(args))
	for i, a := range args {
		b, err := a.MessagePack()
		if err != nil {
			t.Fatal(err)
		}
		mp[i] = protocol.MessagePackValue(b)
	}
	if sent2, seq2, err := stamp(mp); err != nil || seq2 != 7 || !sent2.Equal(sent) {
		t.Fatalf("msgpack stamp = %v %d %v", sent2, seq2, err)
	}
	for _, bad := range [][]protocol.Value{nil, args[:1], {args[2], args[1]}, {args[0], protocol.JSONValue([]byte("1.5"))}} {
		if _, _, err := stamp(bad); err == nil {
			t.Errorf("stamp(%v) accepted", bad)
		}
	}
}

func FuzzStamp(f *testing.F) {
	f.Add([]byte("123"), []byte("4"), false)
	f.Add([]byte{0xd3, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{0x05}, true)
	f.Add([]byte(`"x"`), []byte("null"), false)
	f.Fuzz(func(t *testing.T, a, b []byte, msgpack bool) {
		v := protocol.JSONValue
		if msgpack {
			v = protocol.MessagePackValue
		}
		_, _, _ = stamp([]protocol.Value{v(a), v(b)})
	})
}

// Errors of different types from one run are kept, the last one wins (an atomic.Value
// panicked on the second type: the S2 bench crashed under overload).
func TestLastErrorOfDifferentTypes(t *testing.T) {
	var l lastError
	if l.Load() != nil {
		t.Fatal("an empty lastError holds an error")
	}
	l.Store(errors.New("completion error"))
	l.Store(context.DeadlineExceeded)
	l.Store(fmt.Errorf("wrapped: %w", io.EOF))
	if err := l.Load(); !errors.Is(err, io.EOF) {
		t.Errorf("last error %v", err)
	}
}

func TestParseFileLimit(t *testing.T) {
	limits := "Limit                     Soft Limit           Hard Limit           Units     \n" +
		"Max processes             95738                95738                processes \n" +
		"Max open files            20000                20000                files     \n"
	if n, err := parseFileLimit([]byte(limits)); n != 20000 || err != nil {
		t.Fatalf("%d, %v", n, err)
	}
	if n, err := parseFileLimit([]byte("Max open files            unlimited            unlimited            files\n")); n != 0 || err != nil {
		t.Fatalf("unlimited: %d, %v", n, err)
	}
	if _, err := parseFileLimit([]byte("Max processes 1 1 processes\n")); err == nil {
		t.Fatal("no line: no error")
	}
}

// The storm's dialers leave the server's open files room: 19,000 clients against a
// limit of 20,000 get 724 dialers instead of 2,048.
func TestStormDialers(t *testing.T) {
	for _, c := range []struct{ n, files, limit, want int }{
		{10000, 20, 20000, 2048},
		{19000, 20, 20000, 724},
		{19000, 20, 0, 2048},
		{19900, 20, 20000, 64},
		{500, 20, 20000, 500},
	} {
		if got := stormDialersFor(c.n, c.files, c.limit); got != c.want {
			t.Errorf("stormDialersFor(%d, %d, %d) = %d, want %d", c.n, c.files, c.limit, got, c.want)
		}
	}
}
