package tickets

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// A creation whose writes failed while it may be queued, and whose
// withdrawal's claim went unanswered through every try with no claim
// read, cannot know whether a matcher will put its ticket in a match: it
// answers the ticket as queued, withdraws nothing later, and its
// follower hears its outcome (here its expiry). Before, it answered an
// error and withdrew the ticket in the background, which a matcher often
// beat: a no-show in its partners' game (chaos S57b: 13, matched 5-7 s
// after their creations answered 503, their frontend cut off from the
// claims bucket and the matchers not).
func TestAnUndecidedWithdrawalAnswersTheTicket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault func(*toldEnv) *refusingRecords
	}{
		{"its record stored, its queue ack lost", func(e *toldEnv) *refusingRecords {
			e.s.js = lostAcks{e.s.js}
			return nil
		}},
		{"its record refused", func(e *toldEnv) *refusingRecords {
			records := &refusingRecords{KeyValue: e.s.kv}
			records.refusing.Store(true)
			e.s.kv = records
			return records
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			records := tc.fault(e)
			var fails atomic.Int32
			fails.Store(1 << 30) // every claim refused for now until the creation answered
			claims, err := events.NewClaims(t.Context(), failingClaims{JetStream: e.js, fails: &fails}, e.subj)
			if err != nil {
				t.Fatal(err)
			}
			e.s.claims = claims
			cerr := e.createPat(t)
			id := e.queuedTicket(t)
			if id == "" {
				t.Fatal("nothing queued")
			}
			if cerr != nil {
				t.Fatalf("creation answered %v while its ticket %s may be matched (claimed by no one): a no-show once a matcher takes it", cerr, id)
			}
			if waiting := testutil.ToFloat64(e.s.withdrawals.gauge); waiting != 0 {
				t.Fatalf("%v withdrawals left to the background: an answered ticket would be cancelled under its client", waiting)
			}
			if _, err := e.s.Record(t.Context(), id); err != nil {
				t.Fatalf("record of the answered ticket %s: %v", id, err)
			}
			fails.Store(0) // the claims bucket answers again
			if records != nil {
				records.refusing.Store(false)
				testkit.Eventually(t, 5*time.Second, func() bool {
					_, err := records.KeyValue.Get(t.Context(), id)
					return err == nil
				}, "the held record was not stored once the bucket took puts")
			}
			if owner, _ := e.s.claims.Owner(t.Context(), id); owner != "" {
				t.Fatalf("ticket claimed %q once the bucket answered; want it left to a matcher or its expiry", owner)
			}
			// Its follower's tracker expires it at its max wait.
			if soon := e.s.Expire(t.Context(), id); soon {
				t.Fatal("expiry not answered")
			}
			if r := e.stored(t, "pat"); r == nil || r.TicketID != id || r.Status != events.StatusExpired {
				t.Fatalf("the player's last result %+v, want %s expired", r, id)
			}
		})
	}
}

// refusingUpdates is a bucket refusing every update while refusing is
// set: a players bucket in which a new ticket's first write (a player's
// entry created) passes, and a take that replaces a player's entry
// fails.
type refusingUpdates struct {
	jetstream.KeyValue
	refusing *atomic.Bool
}

func (k refusingUpdates) Update(ctx context.Context, key string, v []byte, last uint64) (uint64, error) {
	if k.refusing.Load() {
		return 0, errRecordRefused
	}
	return k.KeyValue.Update(ctx, key, v, last)
}

// A ticket that replaces its player's waiting one, stored and queued but
// its take refused, and its withdrawal undecided, is answered too: its
// shard's owner takes it in as its player's live ticket before it
// matches it (queueThenTake).
func TestAnUndecidedWithdrawalOfAReplacementAnswersIt(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	var refusing atomic.Bool
	players, err := events.NewPlayers(t.Context(), claimsWrapped{e.js, func(kv jetstream.KeyValue) jetstream.KeyValue {
		return refusingUpdates{KeyValue: kv, refusing: &refusing}
	}}, e.subj, e.s.claims)
	if err != nil {
		t.Fatal(err)
	}
	e.s.players = players
	waiting := e.create(t, "pat")
	refusing.Store(true)
	var fails atomic.Int32
	fails.Store(1 << 30)
	if e.s.claims, err = events.NewClaims(t.Context(), failingClaims{JetStream: e.js, fails: &fails}, e.subj); err != nil {
		t.Fatal(err)
	}
	skill := 1650
	v, err := e.s.Create(t.Context(), identity.Caller{PlayerID: "pat"}, Request{Mode: "1v1", Skill: &skill, Region: "eu"}, "")
	if err != nil {
		t.Fatalf("a replacement stored and queued, its take refused and its withdrawal undecided, answered %v: a no-show once a matcher takes it", err)
	}
	if v.TicketID == waiting || v.Status != events.StatusQueued {
		t.Fatalf("answered %+v, want a new ticket queued", v)
	}
	if n := testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()); n != 2 {
		t.Fatalf("%d tickets queued, want the waiting one and its replacement", n)
	}
	if waiting := testutil.ToFloat64(e.s.withdrawals.gauge); waiting != 0 {
		t.Fatalf("%v withdrawals left to the background", waiting)
	}
}
