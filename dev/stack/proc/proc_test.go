package proc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
)

// childEnv makes the test binary a child process of the tests (child).
const childEnv = "PROC_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		child(mode)
		return
	}
	os.Exit(m.Run())
}

// child is a service in small: it says something, then exits 1 ("fail")
// or binds port 0, says where (as services do, with ops.Listen) and runs
// until SIGTERM.
func child(mode string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("starting up")
	if mode == "fail" {
		fmt.Fprintln(os.Stderr, "cannot go on: simulated")
		os.Exit(1)
	}
	ln, err := ops.Listen(slog.New(slog.NewTextHandler(os.Stderr, nil)), ops.NameOps, "127.0.0.1:0")
	if err != nil {
		os.Exit(2)
	}
	defer ln.Close()
	<-ctx.Done()
}

func testProcess(t *testing.T, mode string) *Process {
	t.Helper()
	p := &Process{Name: "child", Path: os.Args[0], Env: []string{childEnv + "=" + mode}, RestartMin: 50 * time.Millisecond, RestartMax: 200 * time.Millisecond}
	t.Cleanup(func() { _ = p.Stop(5 * time.Second) })
	return p
}

// A process on port 0 says where it listens, and the address is read from
// its log; its output is kept.
func TestListeningAndOutput(t *testing.T) {
	p := testProcess(t, "serve")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	addr, err := p.Listening(t.Context(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("address %q", addr)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if out := p.Output(); !strings.Contains(out, "starting up") || !strings.Contains(out, addr) {
		t.Fatalf("output kept: %q", out)
	}
}

// A process that exits during start-up is an error with what it said.
func TestExitDuringStartUpCarriesOutput(t *testing.T) {
	p := testProcess(t, "fail")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	_, err := p.Listening(t.Context(), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exit status 1") || !strings.Contains(err.Error(), "cannot go on: simulated") {
		t.Fatalf("got %v, want the exit and the output", err)
	}
}

// A supervised process is started again after it exits, and the exit and
// the restart are logged; after Stop it is not.
func TestSuperviseRestartsAndLogs(t *testing.T) {
	p := testProcess(t, "fail")
	var logs strings.Builder
	kept := NewKept(&logs, 1<<20)
	p.Logs = kept
	if err := p.Supervise(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for p.Crashes() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("crashes %d; logs:\n%s", p.Crashes(), kept)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = p.Stop(5 * time.Second)
	out := kept.String()
	if !strings.Contains(out, "child     | exited: exit status 1; restarting in ") || !strings.Contains(out, "child     | restarted (pid ") {
		t.Fatalf("logs:\n%s", out)
	}
	n := p.Crashes()
	time.Sleep(500 * time.Millisecond)
	if p.Crashes() != n {
		t.Fatal("restarted after Stop")
	}
}

// The line of ops.Listen is read in each format a service may log it in.
func TestParseListening(t *testing.T) {
	for line, want := range map[string][2]string{
		`{"time":"x","level":"INFO","msg":"listening","service":"matcher","name":"ops","addr":"127.0.0.1:4100"}`: {"ops", "127.0.0.1:4100"},
		`time=x level=INFO msg=listening service=game name=http addr=[::]:4101`:                                  {"http", "[::]:4101"},
		`time=x level=INFO msg="not listening" name=http addr=127.0.0.1:4103`:                                    {},
		`time=x level=INFO msg=started addr=127.0.0.1:4104`:                                                      {},
	} {
		name, addr, ok := ParseListening(line)
		if ok != (want[1] != "") || name != want[0] || addr != want[1] {
			t.Errorf("%s: got %q %q %v, want %q", line, name, addr, ok, want)
		}
	}
}
