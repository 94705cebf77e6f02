package events_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

func validBackfill() events.Backfill {
	return events.Backfill{
		SchemaVersion: events.SchemaVersion, BackfillID: "m1-b1", MatchID: "m1", Ask: 1, Mode: "2v2", Region: "eu", Tier: "gold",
		Skill: 1650, Players: []string{"a", "b", "c", "d"}, Seats: []int{1, 0}, Attributes: &events.Attributes{Strings: map[string]string{"platform": "pc"}},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// TestDecodeBackfill: a request as the allocator writes it reads back;
// every field that would let a request ask for what no room has, or
// name a subject or claim it should not, is refused by name.
func TestDecodeBackfill(t *testing.T) {
	t.Parallel()
	want := validBackfill()
	data, _ := json.Marshal(want)
	got, err := events.DecodeBackfill(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.BackfillID != want.BackfillID || got.Skill != want.Skill || len(got.Seats) != 2 || got.Seats[0] != 1 ||
		got.Attributes.Strings["platform"] != "pc" || !got.CreatedAt.Equal(want.CreatedAt) || got.Free() != 1 ||
		got.Ask != 1 || strings.Join(got.Players, ",") != "a,b,c,d" {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	for name, tc := range map[string]struct {
		edit  func(*events.Backfill)
		field string
	}{
		"a wildcard in the id":      {func(b *events.Backfill) { b.BackfillID = "m1.*" }, "backfill_id"},
		"no room":                   {func(b *events.Backfill) { b.MatchID = "" }, "match_id"},
		"a dot in the region":       {func(b *events.Backfill) { b.Region = "eu.x" }, "region"},
		"no tier":                   {func(b *events.Backfill) { b.Tier = "" }, "tier"},
		"no mode":                   {func(b *events.Backfill) { b.Mode = "" }, "mode"},
		"skill out of range":        {func(b *events.Backfill) { b.Skill = events.MaxSkill + 1 }, "skill"},
		"one team":                  {func(b *events.Backfill) { b.Seats = []int{1} }, "seats"},
		"no free seat":              {func(b *events.Backfill) { b.Seats = []int{0, 0} }, "seats"},
		"a negative seat":           {func(b *events.Backfill) { b.Seats = []int{2, -1} }, "seats[1]"},
		"more seats than a room":    {func(b *events.Backfill) { b.Seats = []int{60, 60} }, "seats"},
		"more teams than a room":    {func(b *events.Backfill) { b.Seats = make([]int, play.MaxPlayers+1); b.Seats[0] = 1 }, "seats"},
		"no time":                   {func(b *events.Backfill) { b.CreatedAt = time.Time{} }, "created_at"},
		"an attribute out of shape": {func(b *events.Backfill) { b.Attributes.Strings["a b"] = "x" }, "attributes.strings"},
		"another schema version":    {func(b *events.Backfill) { b.SchemaVersion = 2 }, "schema_version"},
		"a negative ask":            {func(b *events.Backfill) { b.Ask = -1 }, "ask"},
		"a wildcard in a player":    {func(b *events.Backfill) { b.Players = []string{"a", "b>"} }, "players[1]"},
		"too many players": {func(b *events.Backfill) {
			b.Players = make([]string, events.MaxBackfillPlayers+1)
			for i := range b.Players {
				b.Players[i] = "p" + strconv.Itoa(i)
			}
		}, "players"},
	} {
		t.Run(name, func(t *testing.T) {
			b := validBackfill()
			b.Attributes = &events.Attributes{Strings: map[string]string{"platform": "pc"}}
			tc.edit(&b)
			data, _ := json.Marshal(b)
			_, err := events.DecodeBackfill(data)
			var ve *events.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			named := false
			for _, f := range ve.Fields {
				named = named || f.Field == tc.field
			}
			if !named {
				t.Fatalf("err = %v, want one naming %q", err, tc.field)
			}
			if b.Validate() == nil {
				t.Fatal("Validate accepts what DecodeBackfill refuses")
			}
		})
	}
	if _, err := events.DecodeBackfill([]byte(`{"backfill_id":`)); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("truncated JSON: %v", err)
	}
}

// TestBackfillClaimKey: a request's claim can never be a ticket's, since
// a ticket id cannot hold a '.'.
func TestBackfillClaimKey(t *testing.T) {
	t.Parallel()
	key := events.BackfillClaimKey("m1-b2")
	if key != "backfill.m1-b2" {
		t.Fatalf("BackfillClaimKey = %q", key)
	}
	if events.CheckID(key) == nil {
		t.Fatalf("%q is a valid ticket id: a ticket could squat the request's claim", key)
	}
}

// TestMatchBackfillChecked: a match that fills a request names the
// request and the room with ids as safe as any other.
func TestMatchBackfillChecked(t *testing.T) {
	t.Parallel()
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: "m2", Mode: "2v2", Region: "eu", Tier: "gold",
		Tickets:  []events.MatchTicket{{TicketID: "t1", Players: []string{"p1"}, Team: 1}},
		Backfill: &events.MatchBackfill{BackfillID: "m1-b1", MatchID: "m1"}}
	data, _ := json.Marshal(m)
	got, err := events.DecodeMatch(data)
	if err != nil || got.Backfill == nil || *got.Backfill != *m.Backfill {
		t.Fatalf("DecodeMatch = %+v, %v", got, err)
	}
	m.Backfill.MatchID = "m1>"
	data, _ = json.Marshal(m)
	if _, err := events.DecodeMatch(data); err == nil || !strings.Contains(err.Error(), "backfill.match_id") {
		t.Fatalf("a room id with a wildcard: %v", err)
	}
}

// TestPublishBackfillOnce: a request lands on its shard's subject of the
// backfills stream, where the shard's own consumer holds it, under its id
// as the message id: the allocator publishes it on every poll and it is
// stored once.
func TestPublishBackfillOnce(t *testing.T) {
	t.Parallel()
	subj := events.Subjects{}
	js := provisioned(t, events.Topology{})
	pub := events.NewPublisher(js, subj)
	b := validBackfill()
	for range 3 {
		if err := pub.Backfill(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(t.Context(), subj.BackfillsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("%d requests stored, want 1", info.State.Msgs)
	}
	raw, err := st.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "backfills.eu.gold" || raw.Header.Get(jetstream.MsgIDHeader) != "m1-b1" {
		t.Fatalf("stored on %q with id %q", raw.Subject, raw.Header.Get(jetstream.MsgIDHeader))
	}
	cons, err := st.Consumer(t.Context(), events.BackfillConsumer("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	if f := cons.CachedInfo().Config.FilterSubject; f != subj.Backfill("eu", "gold") {
		t.Fatalf("the shard's consumer filters %q", f)
	}
	// The server counts a consumer's pending messages after it stores
	// them, not with the publish's ack: a loaded machine read 0 here.
	testkit.Eventually(t, 5*time.Second, func() bool {
		ci, err := cons.Info(t.Context())
		return err == nil && ci.NumPending == 1
	}, "the shard's consumer never had the request pending")
	other, err := st.Consumer(t.Context(), events.BackfillConsumer("us", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	if ci := other.CachedInfo(); ci.NumPending != 0 {
		t.Fatalf("another shard's consumer has %d pending", ci.NumPending)
	}
}
