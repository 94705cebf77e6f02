package ops

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"testing"
)

// Listen on port 0 says the address it bound, in one line, so that a
// parent process can reach it without probing for a free port first.
func TestListenLogsBoundAddress(t *testing.T) {
	var buf bytes.Buffer
	ln, err := Listen(slog.New(slog.NewJSONHandler(&buf, nil)), NameOps, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var line struct{ Msg, Name, Addr string }
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if line.Msg != ListeningMsg || line.Name != NameOps || line.Addr != ln.Addr().String() {
		t.Fatalf("logged %+v, want msg %q name %q addr %s", line, ListeningMsg, NameOps, ln.Addr())
	}
	if _, port, _ := net.SplitHostPort(line.Addr); port == "0" {
		t.Fatalf("logged the requested port, not the bound one: %s", line.Addr)
	}
}

// The line is written even when the service logs warnings only
// (LOG_LEVEL=warn): without it no one can find a service on port 0.
func TestListenLogsAtAnyLevel(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ln, err := Listen(log, NameHTTP, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var line struct{ Msg, Name, Addr string }
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line.Addr != ln.Addr().String() {
		t.Fatalf("at level warn, logged %q (%v), want the listening line with %s", buf.String(), err, ln.Addr())
	}
}
