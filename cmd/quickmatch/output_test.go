package main

import (
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestWriteQueue: a row with the owner's figures and percentiles, one
// with figures only (no match in the window) and one with percentiles
// only (its owner's figures aged out) line up, an unknown value as "-",
// and the note says where the percentiles come from.
func TestWriteQueue(t *testing.T) {
	t.Parallel()
	upd := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	out := &queueOut{Window: "1m0s", Rows: []queueRow{
		{Shard: "eu.gold", Mode: "1v1", Stats: &events.QueueStats{Waiting: 12, ExpectedWaitMS: 4200, Matched: 30, UpdatedAt: upd},
			Waited: &percentiles{Tickets: 30, P50: 3100, P90: 8000, P99: 12500, Max: 14000}},
		{Shard: "eu.silver", Mode: "2v2", Stats: &events.QueueStats{Waiting: 1, UpdatedAt: upd}},
		{Shard: "us.gold", Mode: "1v1", Waited: &percentiles{Tickets: 2, P50: 900, P90: 900, P99: 900, Max: 900}},
	}}
	var b strings.Builder
	if err := writeQueue(&b, out); err != nil {
		t.Fatal(err)
	}
	want := `SHARD      MODE  WAITING  EXPECTED WAIT  MATCHED/MIN  UPDATED                   TICKETS MATCHED  P50    P90    P99    MAX
eu.gold    1v1   12       4.2s           30           2026-12-02T08:00:00.000Z  30               3.1s   8s     12.5s  14s
eu.silver  2v2   1        -              0            2026-12-02T08:00:00.000Z  -                -      -      -      -
us.gold    1v1   -        -              -            -                         2                900ms  900ms  900ms  900ms
percentiles: waits (created_at to match) of the tickets matched in the last 1m0s, from the match records
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestPercentilesOf: nearest rank, so each percentile is a wait that
// happened; none for no waits.
func TestPercentilesOf(t *testing.T) {
	t.Parallel()
	if p := percentilesOf(nil); p != nil {
		t.Fatalf("no waits: %+v", p)
	}
	var ws []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ws = append(ws, time.Duration(i)*time.Second)
	}
	p := percentilesOf(ws)
	if *p != (percentiles{Tickets: 100, P50: 50000, P90: 90000, P99: 99000, Max: 100000}) {
		t.Errorf("1..100 s: %+v", *p)
	}
	if p := percentilesOf([]time.Duration{time.Second}); *p != (percentiles{Tickets: 1, P50: 1000, P90: 1000, P99: 1000, Max: 1000}) {
		t.Errorf("one wait: %+v", *p)
	}
}

// TestRedact: no join token leaves the CLI, in the assignment or in its
// play URL; the result passed in is not changed.
func TestRedact(t *testing.T) {
	t.Parallel()
	r := events.Result{Status: events.StatusAssigned, Assignment: &events.Assignment{
		Server: "game-1", JoinToken: "v2.k.secret.sig", URL: "http://127.0.0.1:7000/play?room=m1&token=v2.k.secret.sig"}}
	got := redact(r)
	if got.Assignment.JoinToken != redacted || strings.Contains(got.Assignment.URL, "secret") || got.Assignment.Server != "game-1" {
		t.Errorf("redacted: %+v", *got.Assignment)
	}
	if r.Assignment.JoinToken != "v2.k.secret.sig" {
		t.Error("redact changed its argument")
	}
	if got := redact(events.Result{Status: events.StatusQueued}); got.Assignment != nil {
		t.Errorf("a queued result got an assignment: %+v", got)
	}
}

// TestStanding: the highest-ranked result, or the claim's status when it
// ranks higher; queued when nothing was decided.
func TestStanding(t *testing.T) {
	t.Parallel()
	rs := func(ss ...events.Status) []events.Result {
		var out []events.Result
		for _, s := range ss {
			out = append(out, events.Result{Status: s})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		results []events.Result
		owner   string
		want    events.Status
	}{
		{"nothing", nil, "", events.StatusQueued},
		{"a late matched after assigned", rs(events.StatusMatched, events.StatusAssigned, events.StatusMatched), "match:m1", events.StatusAssigned},
		{"claimed cancelled, not told yet", rs(events.StatusQueued), events.OwnerCancelled, events.StatusCancelled},
		{"claimed by a match, result not out", nil, "match:m1", events.StatusMatched},
		{"superseded", nil, events.OwnerSuperseded, events.StatusCancelled},
	} {
		if got := standing(tc.results, tc.owner); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestAllocationText: a server, a pending or failed record and a
// requeue, in one line; an unknown shape as it is.
func TestAllocationText(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		`{"server":{"name":"game-1","address":"10.0.0.7","port":7001,"cluster":"eu-1"}}`: "server game-1 at 10.0.0.7:7001, cluster eu-1",
		`{"pending":1764662400000}`:               "pending since 2025-12-02T08:00:00.000Z",
		`{"pending":1764662400000,"failed":true}`: "pending since 2025-12-02T08:00:00.000Z, failed",
		`{"requeue":"requeued"}`:                  "tickets requeued",
		`{"until":5}`:                             `{"until":5}`,
		`not json`:                                "unreadable: not json",
	} {
		if got := allocationText([]byte(raw)); got != want {
			t.Errorf("%s: %q, want %q", raw, got, want)
		}
	}
	if got := allocationText(nil); got != "none" {
		t.Errorf("no record: %q", got)
	}
}
