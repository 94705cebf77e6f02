package events_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestOfferMsgID: one id per ticket and shard, so an offer to another
// region and one to a neighbouring tier are two messages, and a retry of
// either is one.
func TestOfferMsgID(t *testing.T) {
	t.Parallel()
	if got := events.OfferMsgID("t1", events.Shard{Region: "us", Tier: "gold"}); got != "t1-at-us.gold" {
		t.Fatalf("OfferMsgID = %q, want t1-at-us.gold", got)
	}
	if events.OfferMsgID("t1", events.Shard{Region: "eu", Tier: "gold"}) == events.OfferMsgID("t1", events.Shard{Region: "eu", Tier: "silver"}) {
		t.Fatal("offers of one ticket to two tiers of a region share a message id")
	}
}

// TestOfferIsAVisitorStoredOnce: an offer lands on the other shard's
// offers subject, marked with its home region and the message id of its
// ticket and shard, so a retried offer is stored once (and an offer to
// another shard is stored too), carrying the ticket's latencies and
// attributes.
func TestOfferIsAVisitorStoredOnce(t *testing.T) {
	t.Parallel()
	js := provisioned(t, events.Topology{})
	subj := events.Subjects{}
	pub := events.NewPublisher(js, subj)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	attrs := &events.Attributes{Strings: map[string]string{"platform": "pc"}, Sets: map[string][]string{"maps": {"dust"}}, Tags: []string{"newbie"}}
	tk := events.TicketFor(events.MatchTicket{TicketID: "t1", Skill: 1650, CreatedAt: created, Players: []string{"a", "b"},
		LatenciesMS: map[string]int{"eu": 20, "us": 90}, Attributes: attrs}, "2v2")
	ctx := events.WithMeta(t.Context(), events.Meta{CorrelationID: "c1"})
	to := events.Shard{Region: "us", Tier: "gold"}
	for range 2 {
		if err := pub.Offer(ctx, to, "eu", tk); err != nil {
			t.Fatal(err)
		}
	}
	if n := testkit.StreamMsgs(t, js, subj.OffersStream()); n != 1 {
		t.Fatalf("%d offers stored, want 1", n)
	}
	if err := pub.Offer(ctx, events.Shard{Region: "us", Tier: "silver"}, "eu", tk); err != nil {
		t.Fatal(err)
	}
	if n := testkit.StreamMsgs(t, js, subj.OffersStream()); n != 2 {
		t.Fatalf("%d offers stored, want 2 (one per shard)", n)
	}
	st, err := js.Stream(t.Context(), subj.OffersStream())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(t.Context(), subj.Offer("us", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]string{jetstream.MsgIDHeader: "t1-at-us.gold", events.HeaderHome: "eu", events.HeaderCorrelationID: "c1"} {
		if got := raw.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	got, err := events.DecodeTicket(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got.TicketID != "t1" || got.Mode != "2v2" || got.Skill != 1650 || !got.CreatedAt.Equal(created) || len(got.Party) != 2 || got.SchemaVersion != events.SchemaVersion {
		t.Errorf("offered ticket %+v, want %+v", got, tk)
	}
	if !reflect.DeepEqual(got.LatenciesMS, tk.LatenciesMS) || !reflect.DeepEqual(got.Attributes, attrs) {
		t.Errorf("offered ticket carries latencies %v and attributes %+v, want %v and %+v", got.LatenciesMS, got.Attributes, tk.LatenciesMS, attrs)
	}
}
