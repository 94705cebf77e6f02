package main

import (
	"encoding/json"
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
		name  string
		burst int
		want  []time.Duration
	}{
		{"one at a time", 1, []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms, 500 * ms, 600 * ms}},
		{"threes", 3, []time.Duration{0, 0, 0, 300 * ms, 300 * ms, 300 * ms, 600 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := arrivalAt(10, tc.burst)
			var got []time.Duration
			for i := range tc.want {
				got = append(got, at(i))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%v, want %v", got, tc.want)
			}
		})
	}
}

// postTimes is a frontend that accepts every POST at once and assigns
// its ticket, and the times the POSTs came (read after the run).
func postTimes(t *testing.T) (url string, posts func() []time.Time) {
	t.Helper()
	var mu sync.Mutex
	var times []time.Time
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tickets", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
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
	t.Cleanup(srv.Close)
	return srv.URL, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return slices.SortedFunc(slices.Values(times), func(a, b time.Time) int { return a.Compare(b) })
	}
}

// runBurst runs 10 tickets at 5/s (2 s) in bursts of burst against url
// and returns the seconds of arrivals and the tickets sent it reports.
func runBurst(t *testing.T, url, burst string) (seconds float64, sent int64) {
	t.Helper()
	args := []string{"-url", url, "-h2c=false", "-token", "tok", "-rate", "5", "-duration", "2s", "-burst", burst, "-timeout", "10s", "-progress", "0", "-json"}
	var out, stderr strings.Builder
	if err := runLoad(t.Context(), args, &out, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var res struct {
		Seconds float64 `json:"seconds"`
		Sent    int64   `json:"tickets_sent"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	return res.Seconds, res.Sent
}

// TestBurstsArriveTogether: `load run -burst 5` at 5/s sends its first
// five POSTs at once and the next five a second after its start, and
// counts the window one at a time would have (its tenth ticket at 1.8
// s), not the second its sends took: the rates per second do not grow
// with the burst. One at a time, the first five would span 800 ms.
func TestBurstsArriveTogether(t *testing.T) {
	t.Parallel()
	start := time.Now() // before the load tool's own start: its groups come later, never sooner
	ps := tenInBursts(t, "5")
	if span := ps[4].Sub(ps[0]); span > 400*time.Millisecond {
		t.Errorf("the first five POSTs spanned %v, want them together", span)
	}
	if second := ps[5].Sub(start); second < time.Second {
		t.Errorf("the second burst came %v after the start, want a second or more", second)
	}
}

// TestBurstLargerThanTheRun: a burst of 50 in a run of 10 tickets sends
// them all at once, over the same window as one at a time: not the ten
// seconds 50 tickets at 5/s would take.
func TestBurstLargerThanTheRun(t *testing.T) {
	t.Parallel()
	ps := tenInBursts(t, "50")
	if span := ps[9].Sub(ps[0]); span > 400*time.Millisecond {
		t.Errorf("the POSTs spanned %v, want them together", span)
	}
}

// tenInBursts runs 10 tickets at 5/s in bursts of burst against a stub
// frontend and returns when each POST came, once it has checked that all
// ten were sent and that the run counts the window one at a time would
// have: 1.8 s, whatever the burst.
func tenInBursts(t *testing.T, burst string) []time.Time {
	t.Helper()
	url, posts := postTimes(t)
	seconds, sent := runBurst(t, url, burst)
	ps := posts()
	if len(ps) != 10 || sent != 10 {
		t.Fatalf("%d POSTs, %d sent, want 10", len(ps), sent)
	}
	if seconds < 1.79 || seconds > 2.5 {
		t.Errorf("arrivals over %.2f s, want the 1.8 s in which 10 tickets at 5/s come", seconds)
	}
	return ps
}

// TestUnusableSettingsAreRefused: a burst below 1 would send nothing or
// divide by nothing, and so would a rate or a duration of none (the
// schedule and the window divide by the rate); a WebSocket's ticket has
// no idempotency key to send. Each is refused before anything is set up
// (over NATS, before a server is dialled: none listens here).
func TestUnusableSettingsAreRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-url", "http://127.0.0.1:1", "-token", "tok", "-burst", "0"}, "-burst"},
		{[]string{"-url", "http://127.0.0.1:1", "-token", "tok", "-burst", "-2"}, "-burst"},
		{[]string{"-via", "nats", "-nats-url", "nats://127.0.0.1:1", "-burst", "0"}, "-burst"},
		{[]string{"-via", "nats", "-nats-url", "nats://127.0.0.1:1", "-rate", "0", "-burst", "5"}, "-rate"},
		{[]string{"-via", "nats", "-nats-url", "nats://127.0.0.1:1", "-duration", "0s"}, "-duration"},
		{[]string{"-via", "ws", "-url", "http://127.0.0.1:1", "-token", "tok", "-idempotency-keys"}, "-idempotency-keys"},
		{[]string{"-url", "http://127.0.0.1:1", "-token", "tok", "-retries", "3"}, "-retries"},
		{[]string{"-url", "http://127.0.0.1:1", "-token", "tok", "-idempotency-keys", "-retries", "-1"}, "-retries"},
	} {
		var out, stderr strings.Builder
		err := runLoad(t.Context(), append(tc.args, "-progress", "0"), &out, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want it refused for %s", tc.args, err, tc.want)
		}
	}
}
