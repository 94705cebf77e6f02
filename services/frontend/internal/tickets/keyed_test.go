package tickets

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// countingKV counts the reads of a bucket.
type countingKV struct {
	jetstream.KeyValue
	gets atomic.Int64
}

func (c *countingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	c.gets.Add(1)
	return c.KeyValue.Get(ctx, key)
}

// A keyed creation (every browser sends an Idempotency-Key) reads nothing
// from the tickets bucket on its first attempt: its record is created
// only if absent, and finding it is what makes an attempt a repeat. A
// repeat of the same request gets the same ticket, queued once; another
// request under the key is refused.
func TestKeyedCreationReadsNothingFirst(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers}, js, subj, noTracker{}, roomEverywhere{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kv := &countingKV{KeyValue: s.kv}
	s.kv = kv
	a := identity.Caller{PlayerID: "a"}
	skill := 1650
	req := Request{Skill: &skill, Region: "eu"}
	first, err := s.Create(t.Context(), a, req, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if n := kv.gets.Load(); n != 0 {
		t.Fatalf("first keyed attempt read the tickets bucket %d times, want none", n)
	}
	again, err := s.Create(t.Context(), a, req, "k1")
	if err != nil || again.TicketID != first.TicketID {
		t.Fatalf("repeat: %+v %v, want ticket %s", again, err, first.TicketID)
	}
	if n := testkit.StreamMsgs(t, js, subj.TicketsStream()); n != 1 {
		t.Fatalf("%d tickets queued, want the one", n)
	}
	other := 1700
	if _, err := s.Create(t.Context(), a, Request{Skill: &other, Region: "eu"}, "k1"); !errors.Is(err, ErrIdempotencyReuse) {
		t.Fatalf("another request under the key: %v, want %v", err, ErrIdempotencyReuse)
	}
}
