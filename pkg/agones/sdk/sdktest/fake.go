// Package sdktest is a fake of the Agones SDK sidecar's HTTP gateway, built
// from Agones' SDK API description (stable and beta) and from what Agones'
// own sdk-server does in local mode, for tests of game servers. It keeps
// one GameServer in memory, answers every endpoint the way the real
// sdk-server does (int64 as strings, refusals as HTTP 500
// {"code":2,"message":..}, routing failures as grpc-gateway answers them),
// streams WatchGameServer, and lets a test play Agones' part: allocate the
// game server as a GameServerAllocation would (Allocate, agones.go).
// RunContract checks any gateway, this fake or a real
// `sdk-server --local`, against the same expectations.
//
// Where local mode and a sidecar in a cluster differ, the fake is local
// mode (what the contract was checked against): counter and list writes
// answer the value after the write (a cluster answers an empty one) and
// a capacity set below the count keeps the count (a cluster cuts it when
// its batch lands). Callers of package sdk must not rely on either.
package sdktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// Server is the fake sidecar.
type Server struct {
	URL string

	mux *http.ServeMux

	mu       sync.Mutex
	gs       sdk.GameServer
	health   int
	calls    []string
	warnings []string
	watchers map[*watcher]struct{}
}

// Options set up the GameServer the fake serves.
type Options struct {
	Name string
	// Labels of the GameServer (its Fleet's, as Agones copies them), for
	// allocations whose selectors match labels.
	Labels map[string]string
	// Counters and Lists the GameServer spec declares: name -> capacity.
	Counters map[string]int64
	Lists    map[string]int64
}

// New starts a fake sidecar; it stops when the test ends. The GameServer
// starts Scheduled, with empty counters and lists.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	if o.Name == "" {
		o.Name = "gs-test"
	}
	s := &Server{watchers: map[*watcher]struct{}{}}
	s.gs = sdk.GameServer{
		ObjectMeta: sdk.ObjectMeta{Name: o.Name, Namespace: "default", Labels: map[string]string{}, Annotations: map[string]string{}},
		Status:     sdk.Status{State: "Scheduled", Address: "127.0.0.1", Counters: map[string]sdk.CounterStatus{}, Lists: map[string]sdk.ListStatus{}},
	}
	for k, v := range o.Labels {
		s.gs.ObjectMeta.Labels[k] = v
	}
	for n, c := range o.Counters {
		s.gs.Status.Counters[n] = sdk.CounterStatus{Capacity: sdk.Int64(c)}
	}
	for n, c := range o.Lists {
		s.gs.Status.Lists[n] = sdk.ListStatus{Capacity: sdk.Int64(c), Values: []string{}}
	}
	s.mux = s.routes()
	hs := httptest.NewServer(s)
	tb.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// GameServer is the fake's GameServer now.
func (s *Server) GameServer() sdk.GameServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.gs)
}

// Healths is how many health pings arrived.
func (s *Server) Healths() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

// Calls lists the gateway calls that changed state, in order ("ready",
// "shutdown", "counter rooms -1", "list players -alice", ...).
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Warnings lists what allocations could not do (an unknown counter or
// list, a capacity out of range), as the Warning events
// CounterActionError and ListActionError that Agones records on the
// GameServer while the allocation itself succeeds.
func (s *Server) Warnings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.warnings)
}

func clone(gs sdk.GameServer) sdk.GameServer {
	b, _ := json.Marshal(gs)
	var out sdk.GameServer
	_ = json.Unmarshal(b, &out)
	return out
}

// ServeHTTP routes as the gateway (grpc-gateway) does: a path no
// endpoint has answers 404 {"code":5,"message":"Not Found"}; a path an
// endpoint has under another method, or a list operation other than
// addValue and removeValue, answers 501 {"code":12,"message":"Method
// Not Allowed"}. http.ServeMux tells the two apart as 404 and 405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // sets the path values Handler does not
		return
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code == http.StatusMethodNotAllowed {
		methodNotAllowed(w)
		return
	}
	status(w, http.StatusNotFound, 5, "Not Found")
}

func status(w http.ResponseWriter, code, grpcCode int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": grpcCode, "message": msg, "details": []any{}})
}

func methodNotAllowed(w http.ResponseWriter) {
	status(w, http.StatusNotImplemented, 12, "Method Not Allowed")
}

// fail answers an sdk-server refusal: HTTP 500 {"code":2,"message":...}.
func fail(w http.ResponseWriter, msg string) {
	status(w, http.StatusInternalServerError, 2, msg)
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

// watcher is one WatchGameServer stream: every notified state is queued
// in order and none is dropped, as the real sdk-server blocks rather
// than skip a watcher, so a test can tell which changes were streamed.
type watcher struct {
	queue []sdk.GameServer // under Server.mu
	ready chan struct{}    // capacity 1: the queue is not empty
}

// notifyLocked streams the GameServer to every watcher; the caller holds
// s.mu. Only what the real sdk-server streams in local mode calls it:
// state, labels, annotations, and Agones' own changes (Allocate); not
// counter or list writes through the gateway.
func (s *Server) notifyLocked() {
	gs := clone(s.gs)
	for w := range s.watchers {
		w.queue = append(w.queue, gs)
		select {
		case w.ready <- struct{}{}:
		default:
		}
	}
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		fail(w, "streaming unsupported")
		return
	}
	wt := &watcher{ready: make(chan struct{}, 1)}
	s.mu.Lock()
	s.watchers[wt] = struct{}{}
	wt.queue = append(wt.queue, clone(s.gs))
	wt.ready <- struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, wt)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	for {
		select {
		case <-wt.ready:
		case <-r.Context().Done():
			return
		}
		s.mu.Lock()
		batch := wt.queue
		wt.queue = nil
		s.mu.Unlock()
		for _, gs := range batch {
			b, _ := json.Marshal(map[string]any{"result": gs})
			if _, err := w.Write(append(b, '\n')); err != nil {
				return
			}
		}
		fl.Flush()
	}
}
