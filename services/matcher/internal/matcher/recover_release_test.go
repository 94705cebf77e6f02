package matcher

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestRequeuedMatchWhoseClaimCannotBeGivenBackIsNotReleased: M was
// published, then requeued by the allocator, which gave back pa's claim
// but not lo's. A worker meeting lo's claim, long after, gives it back
// for the allocator (followPublished); when that fails too, recoverMatch
// says undecided, not released: told released, its caller claims lo
// again, finds it M's still, and drops lo as decided (an expiry, say,
// acks lo without a word to its player).
func TestRequeuedMatchWhoseClaimCannotBeGivenBackIsNotReleased(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	js := &undeletable{JetStream: testkit.JetStream(t, testkit.Connect(t, e.srv)), bucket: e.subj.ClaimsBucket(), key: "lo"}
	w, err := New(Config{}, js, e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.bindState(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := newRunner(w, events.Shard{Region: "eu", Tier: "gold"})
	ctx := t.Context()
	const matchID = "m-requeued"
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: matchID, Mode: "1v1", Region: "eu", Tier: "gold",
		CreatedAt: time.Now().UTC(), Tickets: []events.MatchTicket{
			{TicketID: "lo", Players: []string{"lo"}, Skill: 1800, CreatedAt: time.Now().UTC()},
			{TicketID: "pa", Players: []string{"pa"}, Skill: 1810, Team: 1, CreatedAt: time.Now().UTC()},
		}}
	data, _ := json.Marshal(m)
	if _, err := w.state.matches.Put(ctx, matchID, data); err != nil {
		t.Fatal(err)
	}
	claims := e.claims(t)
	if won, _, err := claims.Claim(ctx, "lo", events.MatchOwner(matchID)); err != nil || !won {
		t.Fatal(won, err)
	}
	if _, _, err := w.state.decisions.Decide(ctx, matchID, events.DecisionPublished); err != nil {
		t.Fatal(err)
	}

	later := time.Now().Add(staleClaim + time.Second)
	r.commits.rec.now = func() time.Time { return later }
	if got := r.commits.rec.recoverMatch(ctx, matchID); got != undecided {
		t.Fatalf("recoverMatch(M) = %v with lo's claim kept, want undecided (%v)", got, undecided)
	}
	if owner, err := claims.Owner(ctx, "lo"); err != nil || owner != events.MatchOwner(matchID) {
		t.Fatalf("setup: lo's claim is %q, %v", owner, err)
	}
	js.key = "" // the claims bucket answers again
	if got := r.commits.rec.recoverMatch(ctx, matchID); got != released {
		t.Fatalf("recoverMatch(M) = %v, want released", got)
	}
}

// undeletable is a JetStream whose claims bucket (bucket) deletes no
// claim of key: the delete times out. key is read only by the test's
// goroutine and the calls it makes.
type undeletable struct {
	jetstream.JetStream
	bucket, key string
}

func (u *undeletable) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := u.JetStream.KeyValue(ctx, bucket)
	if err != nil || bucket != u.bucket {
		return kv, err
	}
	return undeletableKV{KeyValue: kv, u: u}, nil
}

type undeletableKV struct {
	jetstream.KeyValue
	u *undeletable
}

func (kv undeletableKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	if key == kv.u.key {
		return errors.New("nats: timeout")
	}
	return kv.KeyValue.Delete(ctx, key, opts...)
}
