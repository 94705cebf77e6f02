package rules

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	oneModeFile  = `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`
	twoModesFile = `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"},{"name":"2v2","teams":2,"team_size":2,"max_wait":"1m"}]}`
	badFile      = `{"modes":[{"name":"1v1","teams":1,"team_size":1,"max_wait":"1m"}]}`
)

// syncBuffer is a log sink that a Watch goroutine may write while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeFile replaces path's content at once (a rename), as a ConfigMap
// volume does, so a reader never sees half a file.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// openFile opens a Current on a file holding content, logging to the
// returned buffer and counting OnChange calls.
func openFile(t *testing.T, content string) (c *Current, path string, logs *syncBuffer, changes *[]*Set) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "rules.json")
	writeFile(t, path, content)
	logs = &syncBuffer{}
	c, err := Open(path, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	changes = &[]*Set{}
	c.OnChange(func(s *Set) { *changes = append(*changes, s) })
	return c, path, logs, changes
}

func TestCurrentReload(t *testing.T) {
	t.Parallel()
	c, path, logs, changes := openFile(t, oneModeFile)
	first := c.Get()
	if !reflect.DeepEqual(first.Modes(), []string{"1v1"}) {
		t.Fatalf("opened with modes %v", first.Modes())
	}

	if c.Reload() || c.Get() != first || len(*changes) != 0 {
		t.Fatalf("an unchanged file was put in force again (%d changes)", len(*changes))
	}

	writeFile(t, path, twoModesFile)
	if !c.Reload() {
		t.Fatal("a changed good file was not put in force")
	}
	second := c.Get()
	if !reflect.DeepEqual(second.Modes(), []string{"1v1", "2v2"}) {
		t.Fatalf("after reload modes %v", second.Modes())
	}
	if len(*changes) != 1 || (*changes)[0] != second {
		t.Fatalf("OnChange calls %v, want one with the set in force", *changes)
	}

	writeFile(t, path, badFile)
	if c.Reload() || c.Get() != second {
		t.Fatal("a bad file replaced the set in force")
	}
	if n := strings.Count(logs.String(), "rule set refused"); n != 1 {
		t.Fatalf("a bad file logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "1 teams of 1") {
		t.Errorf("the log does not say why the file was refused:\n%s", logs)
	}
	// The same bad file again is not parsed (nor logged) again.
	if c.Reload() || c.Get() != second || strings.Count(logs.String(), "rule set refused") != 1 {
		t.Fatalf("an unchanged bad file was read again:\n%s", logs)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if c.Reload() || c.Get() != second || !strings.Contains(logs.String(), "rule set not read") {
		t.Fatalf("a file gone changed the rules or was not logged:\n%s", logs)
	}

	writeFile(t, path, oneModeFile)
	if !c.Reload() || !reflect.DeepEqual(c.Get().Modes(), []string{"1v1"}) {
		t.Fatalf("a good file after a bad one is not in force: %v", c.Get().Modes())
	}
	if len(*changes) != 2 {
		t.Fatalf("OnChange called %d times, want 2 (one per new set)", len(*changes))
	}
}

func TestCurrentWatch(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rules.json")
	writeFile(t, path, oneModeFile)
	c, err := Open(path, slog.New(slog.NewTextHandler(&syncBuffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan *Set, 1)
	c.OnChange(func(s *Set) { changed <- s })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Watch(ctx, time.Millisecond)
	}()
	writeFile(t, path, twoModesFile)
	select {
	case s := <-changed:
		if !reflect.DeepEqual(s.Modes(), []string{"1v1", "2v2"}) || c.Get() != s {
			t.Errorf("OnChange with modes %v; in force %v", s.Modes(), c.Get().Modes())
		}
	case <-time.After(time.Minute): // a hang guard, not a speed test
		t.Fatal("Watch did not put the changed file in force")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Watch did not return when its context ended")
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.json"), slog.Default()); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, badFile)
	if _, err := Open(bad, slog.Default()); err == nil || !strings.Contains(err.Error(), "1 teams of 1") {
		t.Errorf("Open of a bad file: %v", err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load of a bad file does not name it: %v", err)
	}
	good := filepath.Join(dir, "good.json")
	writeFile(t, good, twoModesFile)
	if s, err := Load(good); err != nil || len(s.Modes()) != 2 {
		t.Errorf("Load: %v", err)
	}
}

// TestFixed: a Current without a file keeps its set: Watch returns at
// once and Reload changes nothing.
func TestFixed(t *testing.T) {
	t.Parallel()
	s := Default()
	c := Fixed(s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Watch(t.Context(), time.Millisecond)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Watch of a Fixed Current did not return")
	}
	// A panic is turned into a failure so that the other tests still run.
	reload := func() (changed bool, panicked any) {
		defer func() { panicked = recover() }()
		return c.Reload(), nil
	}
	if changed, panicked := reload(); panicked != nil || changed || c.Get() != s {
		t.Errorf("Reload of a Fixed Current: changed %v, panic %v", changed, panicked)
	}
}
