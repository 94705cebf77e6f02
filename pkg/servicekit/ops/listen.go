package ops

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// ListeningMsg is the message of the one line Listen logs per listener.
// Whoever starts a service on port 0 (dev/stack, tests) reads the bound
// address from that line instead of probing for a free port and handing it
// over, which races with every other process binding ports meanwhile.
const ListeningMsg = "listening"

// Listener names: the attribute "name" of the line Listen logs, so that a
// process with several listeners says which address is which.
const (
	// NameHTTP is a service's public HTTP listener (frontend API and page,
	// game server).
	NameHTTP = "http"
	// NameOps is the ops endpoints (/healthz, /readyz, /metrics) on a
	// listener of their own: a service's without a public listener
	// (matcher, allocator), or one kept off the players' (frontend and
	// game server with -ops-addr).
	NameOps = "ops"
	// NamePprof is the profiling endpoint (ServeProfiling).
	NamePprof = "pprof"
)

// Listen binds addr over TCP (port 0 picks a free port) and logs one line,
// msg ListeningMsg with name and the bound address (addr=127.0.0.1:41234).
// The line is written at level info whatever level the logger keeps, as
// nats-server prints its ports: a service run with LOG_LEVEL=warn must
// still say where it listens, or no one can find it on port 0.
func Listen(log *slog.Logger, name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s (%s): %w", addr, name, err)
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, ListeningMsg, 0)
	r.AddAttrs(slog.String("name", name), slog.String("addr", ln.Addr().String()))
	_ = log.Handler().Handle(context.Background(), r)
	return ln, nil
}
