package drain_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// A repeat whose first attempt stored the record but never made the
// ticket its player's live ticket (the players bucket was away: 503
// unavailable) is refused once the shard is drained, as a new ticket is,
// and nothing is queued: that attempt got no further than its record.
func TestDrainRefusesTheRepeatOfAnUntakenTicket(t *testing.T) {
	t.Parallel()
	f := startFrontend(t)
	queued := drainAfterAFailedFirstAttempt(t, f, func() error {
		return f.js.DeleteKeyValue(t.Context(), events.Subjects{}.PlayersBucket())
	})
	code, v, hdr := f.post(t, "p", "eu", "k-p")
	if d, _ := v["drained"].(map[string]any); code != http.StatusServiceUnavailable || d["shard"] != "eu.gold" || hdr.Get("Retry-After") != "30" {
		t.Fatalf("repeat of an untaken ticket into a drained shard: %d %v", code, v)
	}
	if n := testkit.StreamMsgs(t, f.js, events.Subjects{}.TicketsStream()); n != queued {
		t.Fatalf("%d tickets queued, want %d: the repeat was queued", n, queued)
	}
}

// A repeat whose first attempt made the ticket live but could not queue
// it (a keyed creation takes before it queues; the tickets stream was
// away) was admitted before the drain: it is answered 202 and its ticket
// queued, as the first attempt would have.
func TestDrainQueuesTheRepeatOfATakenTicket(t *testing.T) {
	t.Parallel()
	f := startFrontend(t)
	queued := drainAfterAFailedFirstAttempt(t, f, func() error {
		return f.js.DeleteStream(t.Context(), events.Subjects{}.TicketsStream())
	})
	if code, v, _ := f.post(t, "p", "eu", "k-p"); code != http.StatusAccepted {
		t.Fatalf("repeat of a ticket taken before the drain: %d %v, want 202", code, v)
	}
	if n := testkit.StreamMsgs(t, f.js, events.Subjects{}.TicketsStream()); n != queued+1 {
		t.Fatalf("%d tickets queued, want %d: the repeat's ticket was not", n, queued+1)
	}
}

// drainAfterAFailedFirstAttempt makes player p's first attempt (key k-p)
// fail with 503 while fault's part of NATS is away, provisions it again,
// drains eu.gold and waits until the frontend refuses new tickets for it.
// It returns how many tickets were queued meanwhile (new ones taken
// before the frontend saw the drain).
func drainAfterAFailedFirstAttempt(t *testing.T, f *frontend, fault func() error) uint64 {
	t.Helper()
	subj := events.Subjects{}
	if err := fault(); err != nil {
		t.Fatal(err)
	}
	if code, v, _ := f.post(t, "p", "eu", "k-p"); code != http.StatusServiceUnavailable {
		t.Fatalf("first attempt with part of NATS away: %d %v, want 503", code, v)
	}
	if err := events.Provision(t.Context(), f.js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	drains, err := events.NewDrains(t.Context(), f.js, subj)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drains.Drain(t.Context(), events.Shard{Region: "eu", Tier: "gold"}, "upgrade", "alice"); err != nil {
		t.Fatal(err)
	}
	queued := uint64(0)
	testkit.Eventually(t, 5*time.Second, func() bool {
		code, _, _ := f.post(t, "new", "eu", "")
		if code == http.StatusAccepted {
			queued++
		}
		return code == http.StatusServiceUnavailable
	}, "the frontend never saw the drain")
	return queued
}
