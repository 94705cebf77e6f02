package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestArrivalAtGroupsTickets: with a burst of 3 at 10/s, tickets 0-2
// arrive at the start, 3-5 at 300 ms, 6 at 600 ms: the mean rate is
// -rate's; a burst of 1 is one ticket every 1/rate.
func TestArrivalAtGroupsTickets(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, tc := range []struct {
		burst int
		want  []time.Duration
	}{
		{1, []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms, 500 * ms, 600 * ms}},
		{3, []time.Duration{0, 0, 0, 300 * ms, 300 * ms, 300 * ms, 600 * ms}},
	} {
		at := arrivalAt(10, tc.burst)
		var got []time.Duration
		for i := range tc.want {
			got = append(got, at(i))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("burst %d: %v, want %v", tc.burst, got, tc.want)
		}
	}
}

// TestBurstsArriveTogether: `load run -burst 5` at 10/s sends its first
// five POSTs at once and the next five half a second later. One at a
// time, the first five would span 400 ms.
func TestBurstsArriveTogether(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var posts []time.Time
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tickets", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts = append(posts, time.Now())
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"ticket_id":"t1","status":"queued","region":"eu","tier":"gold","mode":"1v1"}`)
	})
	mux.HandleFunc("GET /v1/tickets/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: 3\nevent: status\ndata: {\"ticket_id\":%q,\"status\":\"assigned\",\"assignment\":{\"url\":\"http://game/play?room=r\"}}\n\n", r.PathValue("id"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	args := []string{"-url", srv.URL, "-h2c=false", "-token", "tok", "-rate", "10", "-duration", "1s", "-burst", "5", "-timeout", "10s", "-progress", "0", "-json"}
	var out, stderr strings.Builder
	if err := runLoad(t.Context(), args, &out, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 10 {
		t.Fatalf("%d POSTs, want 10", len(posts))
	}
	slices.SortFunc(posts, func(a, b time.Time) int { return a.Compare(b) })
	if span := posts[4].Sub(posts[0]); span > 200*time.Millisecond {
		t.Errorf("the first five POSTs spanned %v, want them together", span)
	}
	if gap := posts[5].Sub(posts[0]); gap < 400*time.Millisecond {
		t.Errorf("the second burst came %v after the first, want about 500 ms", gap)
	}
}

// TestBurstOfNoneIsRefused: a burst below 1 would send nothing or divide
// by nothing; it is refused before any ticket is sent.
func TestBurstOfNoneIsRefused(t *testing.T) {
	t.Parallel()
	for _, b := range []string{"0", "-2"} {
		var out, stderr strings.Builder
		err := runLoad(t.Context(), []string{"-url", "http://127.0.0.1:1", "-token", "tok", "-burst", b, "-progress", "0"}, &out, &stderr)
		if err == nil || !strings.Contains(err.Error(), "-burst") {
			t.Errorf("-burst %s: %v, want it refused", b, err)
		}
	}
}
