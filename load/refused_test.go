package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// refusingStub is a frontend that refuses every second POST for
// overload, answering its 503 only after delay, and assigns the others
// at once.
func refusingStub(delay time.Duration) *httptest.Server {
	var posts atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tickets", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if posts.Add(1)%2 == 0 {
			time.Sleep(delay)
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(ticketapi.ErrorBody{Error: ticketapi.OverloadedError}) // as the frontend writes it
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"ticket_id":"t1","status":"queued","region":"eu","tier":"gold","mode":"1v1"}`)
	})
	mux.HandleFunc("GET /v1/tickets/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: 1\nevent: status\ndata: {\"ticket_id\":%q,\"status\":\"assigned\",\"assignment\":{\"url\":\"http://game/play?room=r\"}}\n\n", r.PathValue("id"))
	})
	return httptest.NewServer(mux)
}

// TestRunTimesRefusals: `load run` counts the POSTs refused with 503 and
// times them, from the POST to its 503, apart from the accepted tickets:
// the stub holds each refusal for 40 ms, so every quantile of theirs is
// at least that, and they are refused, not assigned.
func TestRunTimesRefusals(t *testing.T) {
	t.Parallel()
	const delay = 40 * time.Millisecond
	srv := refusingStub(delay)
	defer srv.Close()
	// 10 tickets: 5 refused, 5 assigned.
	args := []string{"-url", srv.URL, "-h2c=false", "-token", "tok", "-rate", "100", "-duration", "100ms", "-timeout", "10s", "-progress", "0"}

	var out, stderr strings.Builder
	if err := runLoad(t.Context(), append(args, "-json"), &out, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var res struct {
		Sent      int64              `json:"tickets_sent"`
		Assigned  int64              `json:"assigned"`
		Errors    map[string]int64   `json:"errors_by_kind"`
		Refused   int64              `json:"refused"`
		RefusedMs map[string]float64 `json:"refused_ms"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Sent != 10 || res.Assigned != 5 || res.Refused != 5 || res.Errors["post_503"] != 5 {
		t.Fatalf("sent %d, assigned %d, refused %d, errors %v; want 10, 5, 5 and post_503: 5", res.Sent, res.Assigned, res.Refused, res.Errors)
	}
	ms := float64(delay / time.Millisecond)
	for _, q := range []string{"p50", "p99", "max"} {
		if res.RefusedMs[q] < ms {
			t.Errorf("refused %s %.1f ms, want at least the stub's %.0f ms: %v", q, res.RefusedMs[q], ms, res.RefusedMs)
		}
	}

	out.Reset()
	if err := runLoad(t.Context(), args, &out, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(out.String(), "refused     5 ") || !strings.Contains(out.String(), "(POST to 503)") {
		t.Errorf("the text summary lacks the refused POSTs:\n%s", out.String())
	}
}

// TestRunSaysWhenTheAssignmentsCame: `load run -json` gives when its
// arrivals began and when its last ticket was assigned, so that perf
// charges the system's CPU for that span and not for the wait of a
// ticket left without an outcome: the stub never answers one ticket's
// event stream, which waits out -timeout, long after the others were
// assigned.
func TestRunSaysWhenTheAssignmentsCame(t *testing.T) {
	t.Parallel()
	var posts atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tickets", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"ticket_id":"t%d","status":"queued","region":"eu","tier":"gold","mode":"1v1"}`, posts.Add(1))
	})
	mux.HandleFunc("GET /v1/tickets/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if r.PathValue("id") == "t3" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // no outcome: the client times out
			return
		}
		fmt.Fprintf(w, "id: 1\nevent: status\ndata: {\"ticket_id\":%q,\"status\":\"assigned\",\"assignment\":{\"url\":\"http://game/play?room=r\"}}\n\n", r.PathValue("id"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	const timeout = 1500 * time.Millisecond
	args := []string{"-url", srv.URL, "-h2c=false", "-token", "tok", "-rate", "100", "-duration", "100ms", "-timeout", timeout.String(), "-progress", "0", "-json"}

	var out, stderr strings.Builder
	before := time.Now()
	if err := runLoad(t.Context(), args, &out, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	after := time.Now()
	var res struct {
		Assigned       int64            `json:"assigned"`
		Errors         map[string]int64 `json:"errors_by_kind"`
		FirstSentAt    time.Time        `json:"first_sent_at"`
		LastAssignedAt time.Time        `json:"last_assigned_at"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Assigned != 9 || res.Errors["timeout"] != 1 {
		t.Fatalf("assigned %d, errors %v; want 9 and one timeout", res.Assigned, res.Errors)
	}
	if res.FirstSentAt.Before(before) || !res.LastAssignedAt.After(res.FirstSentAt) {
		t.Fatalf("arrivals from %s, last assigned at %s: want the arrivals after the run began (%s) and the assignment after them", res.FirstSentAt, res.LastAssignedAt, before)
	}
	if took := res.LastAssignedAt.Sub(res.FirstSentAt); took >= timeout/2 || after.Sub(res.LastAssignedAt) < timeout/2 {
		t.Fatalf("last assigned %s after the arrivals began and %s before the run ended: want the assignments' span, not the timed-out ticket's wait (%s)", took, after.Sub(res.LastAssignedAt), timeout)
	}
}
