package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it is 100
// on every Linux architecture Go supports.
const clockTicks = 100

// ProcSample is one reading of a process's resource use.
type ProcSample struct {
	At  time.Time
	CPU time.Duration // user + system time so far
	RSS int64         // resident set size in bytes
}

// ReadProc samples process pid from /proc (Linux only).
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s, fmt.Errorf("bench: reading process stats: %w", err)
	}
	if s.CPU, err = parseStatCPU(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return s, fmt.Errorf("bench: reading process status: %w", err)
	}
	if s.RSS, err = parseStatusRSS(status); err != nil {
		return s, err
	}
	return s, nil
}

// parseStatCPU returns utime+stime of a /proc/PID/stat line. The command name (field
// 2) may hold spaces and parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("bench: /proc stat: no command name")
	}
	f := bytes.Fields(stat[i+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15) → indexes 11 and 12.
	if len(f) < 13 {
		return 0, errors.New("bench: /proc stat: too few fields")
	}
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("bench: /proc stat: %w", err)
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// parseStatusRSS returns VmRSS of /proc/PID/status in bytes.
func parseStatusRSS(status []byte) (int64, error) {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		v, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(v)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("bench: /proc status: unexpected VmRSS %q", v)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc status: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("bench: /proc status: no VmRSS")
}

// OpenFiles counts the open files of process pid (Linux only: /proc/PID/fd).
//
// Since Linux 6.2 the size of /proc/PID/fd is the count, read from the fd bitmap in
// microseconds; listing the directory of a server holding 19,000 sockets took 15-60 ms
// here, and the storm's drain wait (awaitFiles) listed it every 20 ms, most of a core
// taken from the server while it closed the dropped sockets. Older kernels say 0 there:
// the directory is listed.
func OpenFiles(pid int) (int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	if fi, err := os.Stat(dir); err == nil && fi.Size() > 0 {
		return int(fi.Size()), nil
	}
	return listFiles(dir)
}

// listFiles counts the entries of dir.
func listFiles(dir string) (int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, fmt.Errorf("bench: reading open files: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("bench: reading open files: %w", err)
	}
	return len(names), nil
}

// FileLimit returns the soft limit on open files of process pid (Linux only:
// /proc/PID/limits), or 0 when it is unlimited.
func FileLimit(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0, fmt.Errorf("bench: reading process limits: %w", err)
	}
	return parseFileLimit(b)
}

// parseFileLimit reads the soft "Max open files" of a /proc/PID/limits text.
func parseFileLimit(limits []byte) (int, error) {
	for line := range bytes.SplitSeq(limits, []byte("\n")) {
		v, ok := bytes.CutPrefix(line, []byte("Max open files"))
		if !ok {
			continue
		}
		f := bytes.Fields(v)
		if len(f) < 1 {
			break
		}
		if string(f[0]) == "unlimited" {
			return 0, nil
		}
		n, err := strconv.Atoi(string(f[0]))
		if err != nil {
			return 0, fmt.Errorf("bench: /proc limits: %w", err)
		}
		return n, nil
	}
	return 0, errors.New("bench: /proc limits: no Max open files")
}
