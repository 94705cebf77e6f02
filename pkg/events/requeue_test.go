package events_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestRequeueKeepsTheTicketsWait: a requeued ticket lands on its shard's
// ticket subject with its id, skill and creation time, under the message
// id of its ticket and match (RequeueMsgID: "<ticket>-requeue-<match>",
// as on the wire before it moved here), so a retried requeue is stored
// once.
func TestRequeueKeepsTheTicketsWait(t *testing.T) {
	t.Parallel()
	if id := events.RequeueMsgID("t1", "m1"); id != "t1-requeue-m1" {
		t.Fatalf("RequeueMsgID = %q, want t1-requeue-m1", id)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	subj := events.Subjects{}
	js := provisioned(t, events.Topology{})
	pub := events.NewPublisher(js, subj)
	m := events.Match{MatchID: "m1", Mode: "2v2", Region: "eu", Tier: "gold", Tickets: []events.MatchTicket{
		{TicketID: "t1", Players: []string{"a", "b"}, Skill: 1650, CreatedAt: created},
		{TicketID: "t2", Players: []string{"c"}, Skill: 1700, CreatedAt: created.Add(time.Second)},
	}}
	ctx := events.WithMeta(t.Context(), events.Meta{CorrelationID: "c1"})
	for range 2 {
		for _, mt := range m.Tickets {
			if err := pub.Requeue(ctx, m, mt); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := js.Stream(t.Context(), subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("%d tickets stored, want 2", info.State.Msgs)
	}
	for seq, mt := range m.Tickets {
		raw, err := st.GetMsg(t.Context(), uint64(seq+1))
		if err != nil {
			t.Fatal(err)
		}
		if raw.Subject != subj.Ticket("eu", "gold") {
			t.Errorf("subject %q, want %q", raw.Subject, subj.Ticket("eu", "gold"))
		}
		for h, want := range map[string]string{jetstream.MsgIDHeader: mt.TicketID + "-requeue-m1", events.HeaderCorrelationID: "c1"} {
			if got := raw.Header.Get(h); got != want {
				t.Errorf("header %s = %q, want %q", h, got, want)
			}
		}
		got, err := events.DecodeTicket(raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		if got.TicketID != mt.TicketID || got.Mode != "2v2" || got.Skill != mt.Skill || !got.CreatedAt.Equal(mt.CreatedAt) ||
			len(got.Players()) != len(mt.Players) || got.SchemaVersion != events.SchemaVersion {
			t.Errorf("requeued ticket %+v, want %+v", got, mt)
		}
		if len(mt.Players) == 1 && got.PlayerID != mt.Players[0] {
			t.Errorf("one-player ticket requeued with player_id %q, want %q", got.PlayerID, mt.Players[0])
		}
	}
}
