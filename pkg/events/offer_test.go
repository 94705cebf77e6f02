package events_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

func TestOfferMsgID(t *testing.T) {
	t.Parallel()
	if got := events.OfferMsgID("t1", "us"); got != "t1-at-us" {
		t.Fatalf("OfferMsgID = %q, want t1-at-us", got)
	}
}

// TestOfferIsAVisitorStoredOnce: an offer lands on the other region's
// offers subject, marked with its home region and the message id of its
// ticket and region, so a retried offer is stored once.
func TestOfferIsAVisitorStoredOnce(t *testing.T) {
	t.Parallel()
	js := provisioned(t, events.Topology{})
	subj := events.Subjects{}
	pub := events.NewPublisher(js, subj)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tk := events.TicketFor("t1", "2v2", 1650, created, []string{"a", "b"})
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
	st, err := js.Stream(t.Context(), subj.OffersStream())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(t.Context(), subj.Offer("us", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]string{jetstream.MsgIDHeader: "t1-at-us", events.HeaderHome: "eu", events.HeaderCorrelationID: "c1"} {
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
}
