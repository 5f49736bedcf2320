// Package harness is the control port every candidate server of this directory
// serves: /rss (resident bytes and connections) and /fanout?rate=R&dur=D (a
// broadcast of a 100-byte text message R times a second for D, with the process's
// CPU per delivery).
package harness

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func RSS() int64 {
	b, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(b))
	p, _ := strconv.ParseInt(f[1], 10, 64)
	return p * int64(os.Getpagesize())
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}

// Control serves /rss and /fanout on addr; broadcast writes msg to every connection
// and returns how many writes succeeded; count returns the connections.
func Control(addr string, count func() int, broadcast func(msg []byte) int) {
	mux := http.NewServeMux()
	mux.HandleFunc("/rss", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%d %d\n", RSS(), count()) })
	mux.HandleFunc("/fanout", func(w http.ResponseWriter, r *http.Request) {
		rate, _ := strconv.Atoi(r.URL.Query().Get("rate"))
		d, _ := time.ParseDuration(r.URL.Query().Get("dur"))
		msg := []byte(strings.Repeat("x", 100))
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		end := time.Now().Add(d)
		c0 := cpuNow()
		n := 0
		for time.Now().Before(end) {
			<-t.C
			n += broadcast(msg)
		}
		cpu := cpuNow() - c0
		fmt.Fprintf(w, "deliveries %d cpu %v per-delivery %.2f us\n", n, cpu, float64(cpu.Nanoseconds())/float64(n)/1000)
	})
	go http.ListenAndServe(addr, mux)
}

// Conns is the set of a server's open connections.
type Conns[T comparable] struct {
	mu sync.Mutex
	m  map[T]struct{}
}

// Add records an accepted connection.
func (s *Conns[T]) Add(c T) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[T]struct{})
	}
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

// Remove forgets a closed connection.
func (s *Conns[T]) Remove(c T) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// Len is how many connections are open.
func (s *Conns[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// List is a snapshot of the connections.
func (s *Conns[T]) List() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]T, 0, len(s.m))
	for c := range s.m {
		list = append(list, c)
	}
	return list
}
