package transport

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// Budget bounds the bytes a whole process holds for its connections: partial inbound
// messages and outbound queues. Every holder reserves before it keeps bytes and
// releases when it lets them go; a reservation that would pass the limit is refused
// and the holder closes its connection instead of growing. A nil *Budget is
// unlimited.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes (<= 0: unlimited).
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		return nil
	}
	return &Budget{limit: limit}
}

// Reserve takes n bytes from the budget; false (and nothing taken) when that would
// pass the limit.
func (b *Budget) Reserve(n int) bool {
	if b == nil || n <= 0 {
		return true
	}
	if b.used.Add(int64(n)) > b.limit {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

// Release gives back n bytes taken by Reserve.
func (b *Budget) Release(n int) {
	if b == nil || n <= 0 {
		return
	}
	b.used.Add(-int64(n))
}

// Used returns the bytes currently reserved.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Limit returns the limit (0 for unlimited).
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// DefaultBudget derives a limit from the machine: a quarter of the memory the process
// may use (the cgroup limit when there is one, else MemTotal), at least 64 MiB.
// It returns 0 (unlimited) when neither can be read.
func DefaultBudget() int64 {
	mem := cgroupLimit()
	if total := memTotal(); total > 0 && (mem <= 0 || total < mem) {
		mem = total
	}
	if mem <= 0 {
		return 0
	}
	return max(mem/4, 64<<20)
}

func cgroupLimit() int64 {
	b, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil { // "max"
		return 0
	}
	return n
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
