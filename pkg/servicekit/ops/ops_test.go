package ops

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The profiling endpoint serves Go's profiles on its own address, and an
// address it cannot take is an error for the caller to log, not a crash.
func TestServeProfiling(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	taken := ln.Addr().String()
	defer ln.Close()
	if err := ServeProfiling(t.Context(), slog.New(slog.DiscardHandler), taken); err == nil || !strings.Contains(err.Error(), taken) {
		t.Fatalf("address in use: got %v, want an error naming %s", err, taken)
	}

	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ServeProfiling(ctx, slog.New(slog.DiscardHandler), addr) }()
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		res, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			body = string(b)
			break
		}
	}
	if !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("goroutine profile not served: %q", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// A Switch serves its first handler until Set, then the one set, to
// requests in flight on a live server as well.
func TestSwitch(t *testing.T) {
	text := func(s string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, s) })
	}
	sw := NewSwitch(text("probes"))
	srv := httptest.NewServer(sw)
	defer srv.Close()
	get := func() string {
		res, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if got := get(); got != "probes" {
		t.Fatalf("before Set: %q", got)
	}
	sw.Set(text("api"))
	if got := get(); got != "api" {
		t.Fatalf("after Set: %q", got)
	}
}
