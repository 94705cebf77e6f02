package sdktest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// The endpoints, each as Agones' sdk-server answers it in local mode
// (pkg/sdkserver/localsdk.go), its messages included.

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ready", func(w http.ResponseWriter, r *http.Request) { s.state(w, r, "Ready", "ready") })
	mux.HandleFunc("POST /allocate", func(w http.ResponseWriter, r *http.Request) { s.state(w, r, "Allocated", "allocate") })
	mux.HandleFunc("POST /shutdown", func(w http.ResponseWriter, r *http.Request) { s.state(w, r, "Shutdown", "shutdown") })
	mux.HandleFunc("POST /reserve", s.reserve)
	mux.HandleFunc("POST /health", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.health++
		s.mu.Unlock()
		reply(w, struct{}{})
	})
	mux.HandleFunc("PUT /metadata/label", s.meta("label"))
	mux.HandleFunc("PUT /metadata/annotation", s.meta("annotation"))
	mux.HandleFunc("GET /gameserver", func(w http.ResponseWriter, _ *http.Request) { reply(w, s.GameServer()) })
	mux.HandleFunc("GET /watch/gameserver", s.watch)
	mux.HandleFunc("GET /v1beta1/counters/{name}", s.getCounter)
	mux.HandleFunc("PATCH /v1beta1/counters/{name}", s.updateCounter)
	mux.HandleFunc("GET /v1beta1/lists/{name}", s.getList)
	mux.HandleFunc("POST /v1beta1/lists/{nameop}", s.listOp)
	return mux
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

func (s *Server) reserve(w http.ResponseWriter, r *http.Request) {
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
}

// meta sets a label or an annotation. The sdk-server checks no key: an
// empty one is stored as "agones.dev/sdk-".
func (s *Server) meta(field string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var kv struct{ Key, Value string }
		if err := decode(r, &kv); err != nil {
			fail(w, "bad key value: "+err.Error())
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

func (s *Server) getCounter(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	c, ok := s.gs.Status.Counters[name]
	s.mu.Unlock()
	if !ok {
		fail(w, fmt.Sprintf("not found. %s Counter not found", name))
		return
	}
	reply(w, sdk.Counter{Name: name, Count: c.Count, Capacity: c.Capacity})
}

func (s *Server) getList(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	l, ok := s.gs.Status.Lists[name]
	s.mu.Unlock()
	if !ok {
		fail(w, fmt.Sprintf("not found. %s List not found", name))
		return
	}
	reply(w, sdk.List{Name: name, Capacity: l.Capacity, Values: l.Values})
}

// updateCounter applies capacity, then count, then countDiff, checking
// each against the capacity as it stands after the steps before, and
// writes all or nothing. A capacity below the count keeps the count
// (only a later count or countDiff is checked against it). Local mode
// streams no watch event for it.
func (s *Server) updateCounter(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var u struct {
		Count     *sdk.Int64 `json:"count"`
		Capacity  *sdk.Int64 `json:"capacity"`
		CountDiff sdk.Int64  `json:"countDiff"`
	}
	if err := decode(r, &u); err != nil {
		fail(w, "bad counter update: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.gs.Status.Counters[name]
	if !ok {
		fail(w, fmt.Sprintf("not found. %s Counter not found", name))
		return
	}
	var calls []string
	if u.Capacity != nil {
		if *u.Capacity < 0 {
			fail(w, fmt.Sprintf("out of range. Capacity must be greater than or equal to 0. Found Capacity: %d", *u.Capacity))
			return
		}
		c.Capacity = *u.Capacity
		calls = append(calls, fmt.Sprintf("counter %s capacity %d", name, int64(c.Capacity)))
	}
	if u.Count != nil {
		c.Count = *u.Count
		if c.Count < 0 || c.Count > c.Capacity {
			fail(w, fmt.Sprintf("out of range. Count must be within range [0,Capacity]. Found Count: %d, Capacity: %d", c.Count, c.Capacity))
			return
		}
		calls = append(calls, fmt.Sprintf("counter %s = %d", name, int64(c.Count)))
	}
	if u.CountDiff != 0 {
		c.Count += u.CountDiff
		if c.Count < 0 || c.Count > c.Capacity {
			fail(w, fmt.Sprintf("out of range. Count must be within range [0,Capacity]. Found Count: %d, Capacity: %d", c.Count, c.Capacity))
			return
		}
		calls = append(calls, fmt.Sprintf("counter %s %+d", name, int64(u.CountDiff)))
	}
	s.gs.Status.Counters[name] = c
	s.calls = append(s.calls, calls...)
	reply(w, sdk.Counter{Name: name, Count: c.Count, Capacity: c.Capacity})
}

// listOp is POST /v1beta1/lists/{name}:addValue or :removeValue. Adding
// checks room before duplicates, as the sdk-server does; any value is a
// value, the empty one too. Local mode streams no watch event for it.
func (s *Server) listOp(w http.ResponseWriter, r *http.Request) {
	name, op, ok := strings.Cut(r.PathValue("nameop"), ":")
	if !ok || op != "addValue" && op != "removeValue" {
		methodNotAllowed(w) // the path matches GET /v1beta1/lists/{name}
		return
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := decode(r, &v); err != nil {
		fail(w, "bad list value: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, found := s.gs.Status.Lists[name]
	if !found {
		fail(w, fmt.Sprintf("not found. %s List not found", name))
		return
	}
	i := slices.Index(l.Values, v.Value)
	switch {
	case op == "addValue" && int64(len(l.Values)) >= int64(l.Capacity):
		fail(w, fmt.Sprintf("out of range. No available capacity. Current Capacity: %d, List Size: %d", l.Capacity, len(l.Values)))
		return
	case op == "addValue" && i >= 0:
		fail(w, fmt.Sprintf("already exists. Value: %s already in List: %s", v.Value, name))
		return
	case op == "addValue":
		l.Values = append(l.Values, v.Value)
		s.calls = append(s.calls, "list "+name+" +"+v.Value)
	case i < 0:
		fail(w, fmt.Sprintf("not found. Value: %s not found in List: %s", v.Value, name))
		return
	default:
		l.Values = slices.Delete(slices.Clone(l.Values), i, i+1)
		s.calls = append(s.calls, "list "+name+" -"+v.Value)
	}
	s.gs.Status.Lists[name] = l
	reply(w, sdk.List{Name: name, Capacity: l.Capacity, Values: l.Values})
}
