package drain_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// A repeat whose first attempt stored the record but never queued the
// ticket (the broker's stream was away: 503 unavailable) is refused once
// the shard is drained, as a new ticket is, and nothing is queued.
func TestDrainRefusesTheRepeatOfAnUnqueuedTicket(t *testing.T) {
	t.Parallel()
	f := startFrontend(t)
	subj := events.Subjects{}
	if err := f.js.DeleteStream(t.Context(), subj.TicketsStream()); err != nil {
		t.Fatal(err)
	}
	if code, v, _ := f.post(t, "p", "eu", "k-p"); code != http.StatusServiceUnavailable {
		t.Fatalf("first attempt with the tickets stream away: %d %v, want 503", code, v)
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
	queued := uint64(0) // new tickets taken before the frontend saw the drain
	testkit.Eventually(t, 5*time.Second, func() bool {
		code, _, _ := f.post(t, "new", "eu", "")
		if code == http.StatusAccepted {
			queued++
		}
		return code == http.StatusServiceUnavailable
	}, "the frontend never saw the drain")
	code, v, hdr := f.post(t, "p", "eu", "k-p")
	if d, _ := v["drained"].(map[string]any); code != http.StatusServiceUnavailable || d["shard"] != "eu.gold" || hdr.Get("Retry-After") != "30" {
		t.Fatalf("repeat of an unqueued ticket into a drained shard: %d %v", code, v)
	}
	if n := testkit.StreamMsgs(t, f.js, subj.TicketsStream()); n != queued {
		t.Fatalf("%d tickets queued, want %d: the repeat was queued", n, queued)
	}
}
