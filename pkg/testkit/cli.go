package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// NATSCLIEnv names the environment variable that points at a built nats CLI.
// `make test` builds bin/nats once and sets it; without it, the CLI is built
// from the tools module into the user cache on first use.
const NATSCLIEnv = "QUICKMATCH_NATS_CLI"

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// NATSCLI returns the path of the pinned nats CLI, building it if needed.
func NATSCLI(tb testing.TB) string {
	tb.Helper()
	cliOnce.Do(func() { cliPath, cliErr = findOrBuildCLI() })
	if cliErr != nil {
		tb.Fatalf("nats CLI: %v", cliErr)
	}
	return cliPath
}

func findOrBuildCLI() (string, error) {
	if p := os.Getenv(NATSCLIEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", NATSCLIEnv, p, err)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	out := filepath.Join(cache, "quickmatch", "nats-cli")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	// Build to a temporary name and rename, so that test binaries building
	// at the same time never run a half-written file.
	tmp := fmt.Sprintf("%s.%d", out, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "github.com/nats-io/natscli/nats")
	cmd.Dir = filepath.Join(root, "tools")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build nats CLI: %w\n%s", err, b)
	}
	return out, os.Rename(tmp, out)
}

// RepoRoot finds the directory holding go.work, from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory")
		}
		dir = parent
	}
}

// CLI runs the nats CLI against server URL with args and returns its
// output. It fails the test if the CLI fails or runs longer than 30 s.
func CLI(tb testing.TB, url string, args ...string) string {
	tb.Helper()
	out, err := TryCLI(tb, url, args...)
	if err != nil {
		tb.Fatalf("nats %v: %v\n%s", args, err, out)
	}
	return out
}

// TryCLI is CLI that returns the error instead of failing.
func TryCLI(tb testing.TB, url string, args ...string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, NATSCLI(tb), append([]string{"--server", url, "--no-context"}, args...)...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	return buf.String(), err
}

// StartCLI starts a long-running nats CLI command (nats sub) whose output
// is collected in the returned buffer; it is killed when the test ends,
// and its output logged if the test failed.
func StartCLI(tb testing.TB, url string, args ...string) *SyncBuffer {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, NATSCLI(tb), append([]string{"--server", url, "--no-context"}, args...)...)
	buf := &SyncBuffer{}
	cmd.Stdout = buf
	cmd.Stderr = buf
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("start nats %v: %v", args, err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // killed on purpose: its exit status says nothing
		if tb.Failed() {
			tb.Logf("output of nats %v:\n%s", args, buf)
		}
	})
	return buf
}

// StartSub starts `nats sub` on subjects (StartCLI) and returns once the
// server has its subscriptions: StartCLI returns as the process starts,
// and a message published before the CLI has connected and subscribed
// (a loaded machine, a slow process start) is never shown. The CLI is
// also given a marker subject of its own, last: it subscribes to its
// subjects in order on one connection, so once a marker published here
// comes through, so does everything published on subjects after.
func StartSub(tb testing.TB, url string, subjects ...string) *SyncBuffer {
	tb.Helper()
	marker := "testkit.sub." + strconv.FormatInt(time.Now().UnixNano(), 36)
	out := StartCLI(tb, url, append(append([]string{"sub"}, subjects...), marker)...)
	nc := ConnectURL(tb, url)
	Eventually(tb, 30*time.Second, func() bool {
		if err := nc.Publish(marker, nil); err != nil {
			tb.Fatalf("publish %s: %v", marker, err)
		}
		return strings.Contains(out.String(), "Received on "+strconv.Quote(marker))
	}, "nats sub %v never subscribed", subjects)
	nc.Close()
	return out
}

// SyncBuffer is a bytes.Buffer safe for one writer and many readers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
