package perf

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClockTicks is the unit of utime and stime in /proc/<pid>/stat
// (sysconf(_SC_CLK_TCK), USER_HZ): 100 on every Linux architecture Go
// runs on, and reading it needs cgo.
const ClockTicks = 100

// Sample is one process's CPU time and memory as /proc told them at one
// moment.
type Sample struct {
	// CPU is user plus system time since the process started, to a
	// clock tick (10 ms).
	CPU time.Duration
	// RSS is the resident memory (VmRSS), Peak its high-water mark
	// (VmHWM), both in bytes.
	RSS, Peak int64
	// Wakes is how often the process's threads went to sleep to wait (on
	// a socket, a lock, a timer) and were woken after: the sum of each
	// thread's voluntary_ctxt_switches. On this machine a wake costs
	// more CPU than most messages' own work (BENCHMARKS.md, "Twelfth
	// round"). A thread that exited takes its count with it (Go's rarely
	// do).
	Wakes uint64
}

// ReadSample reads pid's Sample from /proc. A process that has exited
// (gone, or a zombie, which has no VmRSS) is an error.
func ReadSample(pid int) (Sample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Sample{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Sample{}, err
	}
	ticks, err := ParseStat(string(stat))
	if err != nil {
		return Sample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	rss, peak, err := ParseStatus(string(status))
	if err != nil {
		return Sample{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	wakes, err := readWakes(pid)
	if err != nil {
		return Sample{}, err
	}
	return Sample{CPU: TicksToDuration(ticks), RSS: rss, Peak: peak, Wakes: wakes}, nil
}

// WakesBetween is the wakes from sample a to the later sample b: none
// if b counts fewer (a thread that exited took its count with it).
func WakesBetween(a, b Sample) uint64 {
	if b.Wakes < a.Wakes {
		return 0
	}
	return b.Wakes - a.Wakes
}

// readWakes sums voluntary_ctxt_switches over pid's threads
// (/proc/<pid>/task/*/status). A thread gone between the listing and
// its read is left out.
func readWakes(pid int) (uint64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, t := range tasks {
		text, err := os.ReadFile(dir + "/" + t.Name() + "/status")
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n, err := ParseWakes(string(text))
		if err != nil {
			return 0, fmt.Errorf("%s/%s/status: %w", dir, t.Name(), err)
		}
		sum += n
	}
	return sum, nil
}

// ParseWakes returns voluntary_ctxt_switches from the text of a thread's
// /proc status file.
func ParseWakes(text string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if value, ok := strings.CutPrefix(sc.Text(), "voluntary_ctxt_switches:"); ok {
			return strconv.ParseUint(strings.TrimSpace(value), 10, 64)
		}
	}
	return 0, errors.New("no voluntary_ctxt_switches")
}

// TicksToDuration converts clock ticks to time.
func TicksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / ClockTicks)
}

// ParseStat returns utime+stime, in clock ticks, from the text of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so the fields are counted from the
// last ')': utime and stime are fields 14 and 15 (proc(5)).
func ParseStat(text string) (uint64, error) {
	end := strings.LastIndexByte(text, ')')
	if end < 0 {
		return 0, errors.New("no command name in parentheses")
	}
	fields := strings.Fields(text[end+1:])
	// fields[0] is field 3 (state): field n is fields[n-3].
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("%d fields after the command name, want at least %d", len(fields), stime+1)
	}
	u, err := strconv.ParseUint(fields[utime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	s, err := strconv.ParseUint(fields[stime], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return u + s, nil
}

// ParseStatus returns VmRSS and VmHWM, in bytes, from the text of
// /proc/<pid>/status (which gives them in kB, meaning KiB).
func ParseStatus(text string) (rss, peak int64, err error) {
	found := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		num, ok := strings.CutSuffix(strings.TrimSpace(value), " kB")
		if !ok {
			return 0, 0, fmt.Errorf("%s %q: want a size in kB", key, strings.TrimSpace(value))
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", key, err)
		}
		found[key] = kb * 1024
	}
	for _, key := range []string{"VmRSS", "VmHWM"} {
		if _, ok := found[key]; !ok {
			return 0, 0, fmt.Errorf("no %s (has the process exited?)", key)
		}
	}
	return found["VmRSS"], found["VmHWM"], nil
}

// ResetPeak sets pid's VmHWM back to its VmRSS (proc(5), clear_refs "5",
// Linux 4.0 and later), so that a peak measured in this process is the
// current leg's and not an earlier one's.
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
