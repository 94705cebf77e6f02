package perf

import (
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// statLine is /proc/<pid>/stat of a process whose command name holds a
// space and parentheses, as a name may: utime 1520 and stime 310 ticks.
const statLine = "4242 (matcher (1) x) S 1 4242 4242 0 -1 4194560 12345 0 3 0 1520 310 7 9 20 0 9 0 6142569 1314041856 9876 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name  string
		text  string
		ticks uint64
		err   string
	}{
		{"name with spaces and parentheses", statLine, 1830, ""},
		{"plain name", "17 (nats) R 1 17 17 0 -1 0 0 0 0 0 5 2 0 0 20 0 1 0 100 0 0\n", 7, ""},
		{"no name", "17 nats R 1 17", 0, "parentheses"},
		{"cut short", "17 (nats) R 1 17 17 0 -1 0 0 0 0 0 5", 0, "fields after the command name"},
		{"not a number", "17 (nats) R 1 17 17 0 -1 0 0 0 0 0 x 2 0", 0, "utime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat(tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.ticks {
				t.Fatalf("ParseStat = %d, %v; want %d", got, err, tc.ticks)
			}
		})
	}
	if d := TicksToDuration(1830); d != 18300*time.Millisecond {
		t.Fatalf("1830 ticks = %s, want 18.3s", d)
	}
}

// statusText is the start of /proc/<pid>/status, VmHWM before VmRSS as
// the kernel writes them, VmPeak (virtual) not to be taken for VmHWM.
const statusText = `Name:	matcher
State:	S (sleeping)
Pid:	4242
VmPeak:	 1290612 kB
VmSize:	 1283256 kB
VmHWM:	   51200 kB
VmRSS:	   40960 kB
RssAnon:	   30000 kB
Threads:	9
`

func TestParseStatus(t *testing.T) {
	rss, peak, err := ParseStatus(statusText)
	if err != nil || rss != 40960*1024 || peak != 51200*1024 {
		t.Fatalf("ParseStatus = %d, %d, %v; want %d, %d", rss, peak, err, 40960*1024, 51200*1024)
	}
	for name, tc := range map[string]struct{ text, err string }{
		// A zombie's status has no memory lines.
		"exited":  {"Name:\tgame\nState:\tZ (zombie)\nPid:\t9\n", "no VmRSS"},
		"no peak": {"VmRSS:\t  40960 kB\n", "no VmHWM"},
		"unit":    {"VmHWM:\t51200 MB\nVmRSS:\t40960 kB\n", "want a size in kB"},
	} {
		if _, _, err := ParseStatus(tc.text); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err = %v, want one with %q", name, err, tc.err)
		}
	}
}

// TestReadSampleAndResetPeak reads this process's own /proc: a peak of
// 64 MiB touched and given back falls when reset, and a process that
// does not exist is an error.
func TestReadSampleAndResetPeak(t *testing.T) {
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = 1
	}
	runtime.KeepAlive(big)
	before, err := ReadSample(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS <= 0 || before.Peak < before.RSS || before.CPU <= 0 {
		t.Fatalf("sample %+v: want CPU and RSS above zero and a peak at least RSS", before)
	}
	big = nil
	debug.FreeOSMemory()
	if err := ResetPeak(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	after, err := ReadSample(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.Peak > before.Peak-32<<20 {
		t.Fatalf("peak %d MiB after the reset, %d MiB before: not reset", after.Peak>>20, before.Peak>>20)
	}
	if _, err := ReadSample(1 << 30); err == nil {
		t.Fatal("a pid that does not exist gave a sample")
	}
}

// TestWakesCountEveryThreadsSleeps: a goroutine on a thread of its own
// that sleeps 50 times adds at least 50 wakes to the process's count,
// though its thread is not the main one (whose status alone the
// process's /proc/<pid>/status shows).
func TestWakesCountEveryThreadsSleeps(t *testing.T) {
	if _, err := ParseWakes("Name:\tx\nvoluntary_ctxt_switches:\t\t42\nnonvoluntary_ctxt_switches:\t7\n"); err != nil {
		t.Fatal(err)
	}
	if n, _ := ParseWakes("voluntary_ctxt_switches:\t\t42\n"); n != 42 {
		t.Fatalf("parsed %d, want 42", n)
	}
	if _, err := ParseWakes("Name:\tx\n"); err == nil {
		t.Fatal("a status without the count parsed")
	}
	before, err := ReadSample(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()         // a thread of its own, not the main one
		defer runtime.UnlockOSThread() // kept, not ended with its count
		for range 50 {
			time.Sleep(time.Millisecond)
		}
		close(done)
	}()
	<-done
	after, err := ReadSample(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.Wakes < before.Wakes+50 {
		t.Fatalf("wakes %d, then %d: want at least 50 more", before.Wakes, after.Wakes)
	}
	if n := WakesBetween(after, before); n != 0 {
		t.Fatalf("wakes between a later and an earlier sample: %d, want 0", n)
	}
}
