package events_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestDecodeNoticeTellsCancelFromMatched: the cancels subjects carry both
// notices; one naming a match is a matched notice, anything else is read
// as a cancel notice, each strictly.
func TestDecodeNoticeTellsCancelFromMatched(t *testing.T) {
	t.Parallel()
	c, m, err := events.DecodeNotice([]byte(`{"schema_version":1,"ticket_id":"t1","region":"eu","tier":"gold","mode":"1v1"}`))
	if err != nil || m != nil || c.TicketID != "t1" {
		t.Fatalf("cancel notice read as %+v, %+v, %v", c, m, err)
	}
	c, m, err = events.DecodeNotice([]byte(`{"schema_version":1,"ticket_id":"t1","match_id":"m1"}`))
	if err != nil || m == nil || m.TicketID != "t1" || m.MatchID != "m1" || c.TicketID != "" {
		t.Fatalf("matched notice read as %+v, %+v, %v", c, m, err)
	}
	_, m, err = events.DecodeNotice([]byte(`{"schema_version":1,"ticket_id":"t1","match_id":"m1","home_region":"eu","home_tier":"gold"}`))
	if err != nil || m == nil || m.HomeRegion != "eu" || m.HomeTier != "gold" {
		t.Fatalf("matched notice naming its home shard read as %+v, %v", m, err)
	}
	for _, bad := range []string{
		`{"schema_version":1,"ticket_id":"t1","match_id":"m1","home_tier":"g.>"}`,
		`{"schema_version":1,"ticket_id":"t1","match_id":""}`,
		`{"schema_version":1,"ticket_id":"t1","match_id":"m.>"}`,
		`{"schema_version":1,"ticket_id":"t1","match_id":"m1","region":"eu"}`, // half a cancel: neither
		`{"schema_version":1,"ticket_id":"t1","mode":"1v1","extra":1}`,
		`not json`,
	} {
		if _, _, err := events.DecodeNotice([]byte(bad)); err == nil {
			t.Errorf("%s: read without an error", bad)
		}
	}
}

// TestSentIsRecordedAndDecideSaysWhoDecided: a match is not sent
// until MarkSent, and is after; of deciders racing, exactly one is first.
func TestSentIsRecordedAndDecideSaysWhoDecided(t *testing.T) {
	t.Parallel()
	js := provisioned(t, events.Topology{})
	d, err := events.NewDecisions(t.Context(), js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if sent, err := d.Sent(ctx, "m1"); err != nil || sent {
		t.Fatalf("a match never sent: %v %v", sent, err)
	}
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, first, err := d.Decide(ctx, "m1", events.DecisionPublished)
			if err != nil || got != events.DecisionPublished {
				t.Errorf("decide: %q %v", got, err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Fatalf("%d deciders were first, want 1", n)
	}
	if err := d.MarkSent(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if sent, err := d.Sent(ctx, "m1"); err != nil || !sent {
		t.Fatalf("after MarkSent: %v %v", sent, err)
	}
	if got, err := d.Decided(ctx, "m1"); err != nil || got != events.DecisionPublished {
		t.Fatalf("the decision after MarkSent: %q %v", got, err)
	}
	if sent, err := d.Sent(ctx, "m2"); err != nil || sent {
		t.Fatalf("another match: %v %v", sent, err)
	}
}
