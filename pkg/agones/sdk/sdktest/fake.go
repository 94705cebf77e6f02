// Package sdktest is a fake of the Agones SDK sidecar's HTTP gateway, built
// from Agones' SDK API description (stable and beta), for tests of game
// servers. It keeps one GameServer in memory, answers every endpoint the
// way the real sdk-server does (int64 as strings, errors as HTTP 500
// {"code":2,"message":..}), streams WatchGameServer, and lets a test play
// Agones' part: allocate the game server with metadata, as an allocation
// would. RunContract checks any gateway, this fake or a real
// `sdk-server --local`, against the same expectations.
package sdktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// Server is the fake sidecar.
type Server struct {
	URL string

	mu       sync.Mutex
	gs       sdk.GameServer
	health   int
	calls    []string
	watchers map[chan sdk.GameServer]struct{}
}

// Options set up the GameServer the fake serves.
type Options struct {
	Name string
	// Counters and Lists the GameServer spec declares: name -> capacity.
	Counters map[string]int64
	Lists    map[string]int64
}

// New starts a fake sidecar; it stops when the test ends.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	if o.Name == "" {
		o.Name = "gs-test"
	}
	s := &Server{watchers: map[chan sdk.GameServer]struct{}{}}
	s.gs = sdk.GameServer{
		ObjectMeta: sdk.ObjectMeta{Name: o.Name, Namespace: "default", Labels: map[string]string{}, Annotations: map[string]string{}},
		Status:     sdk.Status{State: "Scheduled", Address: "127.0.0.1", Counters: map[string]sdk.CounterStatus{}, Lists: map[string]sdk.ListStatus{}},
	}
	for n, c := range o.Counters {
		s.gs.Status.Counters[n] = sdk.CounterStatus{Capacity: sdk.Int64(c)}
	}
	for n, c := range o.Lists {
		s.gs.Status.Lists[n] = sdk.ListStatus{Capacity: sdk.Int64(c), Values: []string{}}
	}
	hs := httptest.NewServer(s.handler())
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

// Calls lists the calls that changed state, in order ("ready", "shutdown",
// "counter rooms -1", "list players -alice", ...).
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Allocate plays an allocation: the GameServer becomes Allocated, gets the
// annotations and labels, its counters grow by counterDiffs and its lists
// get listValues, as a GameServerAllocation with metadata, counters and
// lists actions does.
func (s *Server) Allocate(annotations map[string]string, counterDiffs map[string]int64, listValues map[string][]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, d := range counterDiffs {
		c, ok := s.gs.Status.Counters[n]
		if !ok || int64(c.Count)+d > int64(c.Capacity) || int64(c.Count)+d < 0 {
			return fmt.Errorf("counter %s cannot take %d", n, d)
		}
		c.Count += sdk.Int64(d)
		s.gs.Status.Counters[n] = c
	}
	for n, vs := range listValues {
		l, ok := s.gs.Status.Lists[n]
		if !ok || len(l.Values)+len(vs) > int(l.Capacity) {
			return fmt.Errorf("list %s cannot take %v", n, vs)
		}
		l.Values = append(l.Values, vs...)
		s.gs.Status.Lists[n] = l
	}
	for k, v := range annotations {
		s.gs.ObjectMeta.Annotations[k] = v
	}
	s.gs.Status.State = "Allocated"
	s.notifyLocked()
	return nil
}

func clone(gs sdk.GameServer) sdk.GameServer {
	b, _ := json.Marshal(gs)
	var out sdk.GameServer
	_ = json.Unmarshal(b, &out)
	return out
}

func (s *Server) notifyLocked() {
	gs := clone(s.gs)
	for w := range s.watchers {
		select {
		case w <- gs:
		default: // a slow watcher misses intermediate states, not the last
			select {
			case <-w:
			default:
			}
			w <- gs
		}
	}
}

// fail answers like the gateway: HTTP 500 {"code":2,"message":...}.
func fail(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": 2, "message": msg, "details": []any{}})
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

func (s *Server) state(w http.ResponseWriter, r *http.Request, state, call string) {
	if err := decode(r, &struct{}{}); err != nil {
		fail(w, "bad body: "+err.Error())
		return
	}
	s.mu.Lock()
	s.gs.Status.State = state
	s.calls = append(s.calls, call)
	s.notifyLocked()
	s.mu.Unlock()
	reply(w, struct{}{})
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ready", func(w http.ResponseWriter, r *http.Request) { s.state(w, r, "Ready", "ready") })
	mux.HandleFunc("POST /allocate", func(w http.ResponseWriter, r *http.Request) { s.state(w, r, "Allocated", "allocate") })
	mux.HandleFunc("POST /shutdown", func(w http.ResponseWriter, r *http.Request) { s.state(w, r, "Shutdown", "shutdown") })
	mux.HandleFunc("POST /reserve", func(w http.ResponseWriter, r *http.Request) {
		var d struct {
			Seconds sdk.Int64 `json:"seconds"`
		}
		if err := decode(r, &d); err != nil {
			fail(w, "bad duration: "+err.Error())
			return
		}
		s.mu.Lock()
		s.gs.Status.State = "Reserved"
		s.calls = append(s.calls, "reserve "+strconv.FormatInt(int64(d.Seconds), 10))
		s.notifyLocked()
		s.mu.Unlock()
		reply(w, struct{}{})
	})
	mux.HandleFunc("POST /health", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.health++
		s.mu.Unlock()
		reply(w, struct{}{})
	})
	meta := func(field string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var kv struct{ Key, Value string }
			if err := decode(r, &kv); err != nil || kv.Key == "" {
				fail(w, "key required")
				return
			}
			s.mu.Lock()
			m := s.gs.ObjectMeta.Labels
			if field == "annotation" {
				m = s.gs.ObjectMeta.Annotations
			}
			m[sdk.LabelPrefix+kv.Key] = kv.Value
			s.calls = append(s.calls, field+" "+kv.Key+"="+kv.Value)
			s.notifyLocked()
			s.mu.Unlock()
			reply(w, struct{}{})
		}
	}
	mux.HandleFunc("PUT /metadata/label", meta("label"))
	mux.HandleFunc("PUT /metadata/annotation", meta("annotation"))
	mux.HandleFunc("GET /gameserver", func(w http.ResponseWriter, _ *http.Request) { reply(w, s.GameServer()) })
	mux.HandleFunc("GET /watch/gameserver", s.watch)
	mux.HandleFunc("GET /v1beta1/counters/{name}", s.get("counter", func(name string) (any, bool) {
		c, ok := s.gs.Status.Counters[name]
		return sdk.Counter{Name: name, Count: c.Count, Capacity: c.Capacity}, ok
	}))
	mux.HandleFunc("PATCH /v1beta1/counters/{name}", s.updateCounter)
	mux.HandleFunc("GET /v1beta1/lists/{name}", s.get("list", func(name string) (any, bool) {
		l, ok := s.gs.Status.Lists[name]
		return sdk.List{Name: name, Capacity: l.Capacity, Values: l.Values}, ok
	}))
	mux.HandleFunc("POST /v1beta1/lists/{nameop}", s.listOp)
	return mux
}

// get answers the GET of one counter or list, by the name in the path;
// find looks it up in the status (under the lock) and tells whether it is
// declared.
func (s *Server) get(what string, find func(name string) (any, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		s.mu.Lock()
		v, ok := find(name)
		s.mu.Unlock()
		if !ok {
			fail(w, what+" not found: "+name)
			return
		}
		reply(w, v)
	}
}

func (s *Server) updateCounter(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var u struct {
		Count     *sdk.Int64 `json:"count"`
		Capacity  *sdk.Int64 `json:"capacity"`
		CountDiff *sdk.Int64 `json:"countDiff"`
	}
	if err := decode(r, &u); err != nil {
		fail(w, "bad counter update: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.gs.Status.Counters[name]
	if !ok {
		fail(w, "counter not found: "+name)
		return
	}
	switch {
	case u.CountDiff != nil:
		n := c.Count + *u.CountDiff
		if n < 0 || n > c.Capacity {
			fail(w, fmt.Sprintf("out of range: count %d + %d is outside [0, %d]", c.Count, *u.CountDiff, c.Capacity))
			return
		}
		c.Count = n
		s.calls = append(s.calls, fmt.Sprintf("counter %s %+d", name, int64(*u.CountDiff)))
	case u.Capacity != nil:
		if *u.Capacity < 0 {
			fail(w, "out of range: capacity below 0")
			return
		}
		c.Capacity = *u.Capacity
		c.Count = min(c.Count, c.Capacity)
		s.calls = append(s.calls, fmt.Sprintf("counter %s capacity %d", name, int64(c.Capacity)))
	case u.Count != nil:
		if *u.Count < 0 || *u.Count > c.Capacity {
			fail(w, "out of range: count outside [0, capacity]")
			return
		}
		c.Count = *u.Count
		s.calls = append(s.calls, fmt.Sprintf("counter %s = %d", name, int64(c.Count)))
	}
	s.gs.Status.Counters[name] = c
	s.notifyLocked()
	reply(w, sdk.Counter{Name: name, Count: c.Count, Capacity: c.Capacity})
}

func (s *Server) listOp(w http.ResponseWriter, r *http.Request) {
	name, op, ok := strings.Cut(r.PathValue("nameop"), ":")
	if !ok || op != "addValue" && op != "removeValue" {
		http.NotFound(w, r)
		return
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := decode(r, &v); err != nil || v.Value == "" {
		fail(w, "value required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, found := s.gs.Status.Lists[name]
	if !found {
		fail(w, "list not found: "+name)
		return
	}
	i := slices.Index(l.Values, v.Value)
	switch {
	case op == "addValue" && i >= 0:
		fail(w, "already exists: "+v.Value)
		return
	case op == "addValue" && len(l.Values) >= int(l.Capacity):
		fail(w, "out of range: list at capacity")
		return
	case op == "addValue":
		l.Values = append(l.Values, v.Value)
		s.calls = append(s.calls, "list "+name+" +"+v.Value)
	case i < 0:
		fail(w, "not found: "+v.Value)
		return
	default:
		l.Values = slices.Delete(l.Values, i, i+1)
		s.calls = append(s.calls, "list "+name+" -"+v.Value)
	}
	s.gs.Status.Lists[name] = l
	s.notifyLocked()
	reply(w, sdk.List{Name: name, Capacity: l.Capacity, Values: l.Values})
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		fail(w, "streaming unsupported")
		return
	}
	ch := make(chan sdk.GameServer, 1)
	s.mu.Lock()
	s.watchers[ch] = struct{}{}
	ch <- clone(s.gs)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	for {
		select {
		case gs := <-ch:
			b, _ := json.Marshal(map[string]any{"result": gs})
			if _, err := w.Write(append(b, '\n')); err != nil {
				return
			}
			fl.Flush()
		case <-r.Context().Done():
			return
		}
	}
}
