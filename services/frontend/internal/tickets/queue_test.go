package tickets

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// The record and the ticket are written together: while the broker's
// acks are held, both are stored before either is acknowledged (written
// one after the other, the ticket would wait for the record's ack).
// Create answers once both acks are in, and a ticket created without a
// key stores no request hash (nothing repeats it), one with a key does.
func TestCreateWritesRecordAndTicketTogether(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	djs := testkit.JetStream(t, testkit.Connect(t, srv))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), djs, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	link := testkit.NewLink(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	js := testkit.JetStream(t, testkit.ConnectURL(t, link.URL(), nats.MaxReconnects(0)))
	s, err := New(t.Context(), Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers}, js, subj, noTracker{}, roomEverywhere{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(link.Heal)
	// The take comes first and is not what this test holds: it goes
	// around the link.
	claims, err := events.NewClaims(t.Context(), djs, subj)
	if err != nil {
		t.Fatal(err)
	}
	if s.players, err = events.NewPlayers(t.Context(), djs, subj, claims); err != nil {
		t.Fatal(err)
	}

	link.Cut(testkit.Down)
	skill := 1650
	done := make(chan error, 1)
	var view View
	go func() {
		var err error
		view, err = s.Create(context.Background(), identity.Caller{PlayerID: "a"}, Request{Skill: &skill, Region: "eu"}, "")
		done <- err
	}()
	testkit.Eventually(t, 5*time.Second, func() bool {
		return testkit.StreamMsgs(t, djs, subj.TicketsStream()) == 1 && testkit.StreamMsgs(t, djs, "KV_"+subj.TicketsBucket()) == 1
	}, "record and ticket not both stored while the acks were held")
	select {
	case err := <-done:
		t.Fatalf("Create returned %v before any ack", err)
	default:
	}
	link.Heal()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := storedHash(t, s, view.TicketID); got != "" {
		t.Fatalf("keyless ticket stored request hash %q, want none", got)
	}
	keyed, err := s.Create(t.Context(), identity.Caller{PlayerID: "b"}, Request{Skill: &skill, Region: "eu"}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if got := storedHash(t, s, keyed.TicketID); got == "" {
		t.Fatal("keyed ticket stored no request hash: a repeat could not be compared")
	}
}

func storedHash(t *testing.T, s *Service, id string) string {
	t.Helper()
	rec, err := s.Record(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec.RequestHash
}

// The record Create stores with the queued message's bytes is the
// stored shape (storedRecord) byte for byte. (The message itself is
// events.TicketMsg, TicketUnder's own.)
func TestEncodedRecordIsTheStoredShape(t *testing.T) {
	t.Parallel()
	skill := 1700
	rec := Record{
		Ticket: events.Ticket{SchemaVersion: events.SchemaVersion, TicketID: "t1", PlayerID: "p1", Mode: "1v1", Skill: skill,
			LatenciesMS: map[string]int{"eu": 20}, CreatedAt: time.Date(2026, 12, 2, 0, 0, 0, 5, time.UTC)},
		Shard: events.Shard{Region: "eu", Tier: homeTier(t, skill)}, RequestHash: "h",
	}
	ctx := events.WithMeta(t.Context(), events.Meta{CorrelationID: "c1"})
	msg, enc, err := encode(ctx, events.Subjects{Prefix: "x"}, rec, "v7")
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(events.HeaderRules) != "v7" {
		t.Errorf("rule set version %q, want v7", msg.Header.Get(events.HeaderRules))
	}
	want, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if string(enc) != string(want) {
		t.Errorf("record stored as %s, want the stored shape %s", enc, want)
	}
}

// BenchmarkEncodeForQueue is the JSON work of a creation's two writes:
// the ticket encoded once and carried by the record (once), against the
// record encoded on its own beside the message (twice), and the request
// hash a keyless creation no longer computes.
func BenchmarkEncodeForQueue(b *testing.B) {
	skill := 1805
	req := Request{PlayerID: "p1", Skill: &skill, Region: "eu", LatenciesMS: map[string]int{"eu": 20, "us": 90}}
	rec := Record{
		Ticket: events.Ticket{SchemaVersion: events.SchemaVersion, TicketID: "r0123456789abcdef01234567", PlayerID: "p1", Mode: "1v1",
			Skill: skill, LatenciesMS: req.LatenciesMS, CreatedAt: time.Now().UTC()},
		Shard: events.Shard{Region: "eu", Tier: "gold"},
	}
	ctx, subj := context.Background(), events.Subjects{}
	b.Run("twice", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := rec
			r.RequestHash = requestHash(req)
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
			if _, err := events.TicketMsg(ctx, subj, r.Shard.Region, r.Shard.Tier, r.Ticket, "v1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("once", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			msg, err := events.TicketMsg(ctx, subj, rec.Shard.Region, rec.Shard.Tier, rec.Ticket, "v1")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(encodedRecord{Ticket: msg.Data, Region: rec.Shard.Region, Tier: rec.Shard.Tier}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
