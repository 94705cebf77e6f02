// Package ops serves what operators and Kubernetes probe: /healthz
// (liveness: the process answers, from before it connects to NATS),
// /readyz (readiness: the service takes work) and /metrics (Prometheus).
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is flipped by the service: ready once it takes work, not ready
// as the first step of shutdown so that load balancers stop sending.
type Readiness struct{ ready atomic.Bool }

// Set marks the service ready or not.
func (r *Readiness) Set(ready bool) { r.ready.Store(ready) }

// Ready reports the current state.
func (r *Readiness) Ready() bool { return r.ready.Load() }

// Register adds /healthz, /readyz and /metrics (from reg) to mux.
func Register(mux *http.ServeMux, r *Readiness, reg prometheus.Gatherer) {
	RegisterProbes(mux, r)
	// OpenMetrics when the scraper asks for it (Prometheus does): only
	// that format carries exemplars, the trace ids on histograms.
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
}

// RegisterProbes adds /healthz and /readyz to mux: what a load balancer
// in front of a public port asks, where /metrics has no business.
func RegisterProbes(mux *http.ServeMux, r *Readiness) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}

// Switch serves one handler until Set hands it another: a service
// listens from the start, so that Kubernetes sees the process alive while
// it waits for NATS, and serves what needs NATS once connected or bound
// (the frontend's API after its probes alone, the allocator's autoscaler
// webhook after a 503).
type Switch struct{ h atomic.Pointer[http.Handler] }

// NewSwitch serves h until Set.
func NewSwitch(h http.Handler) *Switch {
	s := &Switch{}
	s.Set(h)
	return s
}

// Set serves h from now on.
func (s *Switch) Set(h http.Handler) { s.h.Store(&h) }

// ServeHTTP serves r with the handler set last.
func (s *Switch) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

// Serve runs srv on ln until ctx ends, then shuts it down within grace.
// http.ErrServerClosed is success.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http server %s shutdown: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Option tunes the server NewServer builds.
type Option func(*http.Server)

// WithCleartextHTTP2 also speaks HTTP/2 without TLS (h2c, prior knowledge),
// as load balancers and proxies do toward their backends: then each
// waiting client is a stream on a shared connection instead of a socket of
// its own. streams bounds the streams of one connection.
func WithCleartextHTTP2(streams int) Option {
	return func(s *http.Server) {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.Protocols = &p
		s.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: streams}
	}
}

// Timeouts of a server. There is deliberately no whole-request read or
// write timeout: Server-Sent Events and WebSockets stay open for minutes,
// and a server-wide deadline would cut them. A handler that reads a body
// bounds that read itself (http.ResponseController.SetReadDeadline).
type Timeouts struct {
	// ReadHeader bounds reading a request's headers; default 10 s.
	ReadHeader time.Duration
	// Idle bounds how long a keep-alive connection waits for its next
	// request (HTTP/1.1) or an HTTP/2 connection stays without streams;
	// default 60 s.
	Idle time.Duration
}

// DefaultTimeouts are those of NewServer without WithTimeouts.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Idle: 60 * time.Second}

// WithTimeouts sets a server's timeouts; zero fields keep the defaults.
func WithTimeouts(t Timeouts) Option {
	return func(s *http.Server) {
		if t.ReadHeader > 0 {
			s.ReadHeaderTimeout = t.ReadHeader
		}
		if t.Idle > 0 {
			s.IdleTimeout = t.Idle
		}
	}
}

// NewServer is a service's server: h with DefaultTimeouts, then opts. A
// service binds with Listen and runs it with Serve.
func NewServer(h http.Handler, opts ...Option) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: DefaultTimeouts.ReadHeader, IdleTimeout: DefaultTimeouts.Idle}
	for _, o := range opts {
		o(srv)
	}
	return srv
}

// ServeProfiling serves Go's profiles (net/http/pprof under /debug/pprof/)
// on addr until ctx ends. It is for load runs and incidents, on an address
// of its own (keep it on localhost or a port no Service exposes), never on
// a service's public listener.
func ServeProfiling(ctx context.Context, log *slog.Logger, addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := Listen(log, NamePprof, addr)
	if err != nil {
		return err
	}
	return Serve(ctx, NewServer(mux), ln, time.Second)
}
