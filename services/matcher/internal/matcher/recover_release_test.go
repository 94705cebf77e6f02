package matcher

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
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
	claims := e.loClaimedBy(t, w, matchID, "eu")
	if _, _, err := w.state.decisions.Decide(ctx, matchID, events.DecisionPublished); err != nil {
		t.Fatal(err)
	}

	later := time.Now().Add(staleClaim + time.Second)
	r.commits.rec.now = func() time.Time { return later }
	if got := r.commits.rec.recoverMatch(ctx, matchID, "lo"); got != undecided {
		t.Fatalf("recoverMatch(M) = %v with lo's claim kept, want undecided (%v)", got, undecided)
	}
	if owner, err := claims.Owner(ctx, "lo"); err != nil || owner != events.MatchOwner(matchID) {
		t.Fatalf("setup: lo's claim is %q, %v", owner, err)
	}
	js.key = "" // the claims bucket answers again
	if got := r.commits.rec.recoverMatch(ctx, matchID, "lo"); got != released {
		t.Fatalf("recoverMatch(M) = %v, want released", got)
	}
}

// loClaimedBy stores match matchID of lo and pa, formed in region's gold
// shard, with lo's claim its own and pa's not, and returns the claims.
func (e *env) loClaimedBy(t *testing.T, w *Worker, matchID, region string) *events.Claims {
	t.Helper()
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: matchID, Mode: "1v1", Region: region, Tier: "gold",
		CreatedAt: time.Now().UTC(), Tickets: []events.MatchTicket{
			{TicketID: "lo", Players: []string{"lo"}, Skill: 1800, CreatedAt: time.Now().UTC()},
			{TicketID: "pa", Players: []string{"pa"}, Skill: 1810, Team: 1, CreatedAt: time.Now().UTC()},
		}}
	data, _ := json.Marshal(m)
	if _, err := w.state.matches.Put(t.Context(), matchID, data); err != nil {
		t.Fatal(err)
	}
	claims := e.claims(t)
	if won, _, err := claims.Claim(t.Context(), "lo", events.MatchOwner(matchID)); err != nil || !won {
		t.Fatal(won, err)
	}
	return claims
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

// TestTicketPublishedForUnsentSettlesItsMatch: the contract the
// frontend's backstop rests on, for a match whose worker died unsent
// (its outbox with it) and whose tickets' messages are gone. The
// frontend's expiry, meeting the match's claim unsent past its grace,
// publishes one of the tickets again (events.Publisher.TicketForUnsent;
// tickets.Service.Expire). Its shard's owner takes it in late, meets the
// claim and settles the match: sent once, decided or not, each player
// told "matched" once, and the ticket published again acked. (The
// matcher's late path is older than the frontend's backstop: this test
// keeps it from changing under it.)
func TestTicketPublishedForUnsentSettlesItsMatch(t *testing.T) {
	t.Parallel()
	for _, decided := range []bool{true, false} {
		t.Run(map[bool]string{true: "decided", false: "undecided"}[decided], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
			told := testkit.Collect(t, e.nc, e.subj.AllResults())
			t0 := time.Now().UTC().Add(-2 * time.Minute) // past casual's max wait
			e.deadMatch(t, t0, decided, false)
			e.liveTicket(t, "a", "ta", t0)
			e.liveTicket(t, "b", "tb", t0)
			e.startWorker(t, Config{RulesFile: writeRules(t, "", `{"modes":[{"name":"casual","teams":2,"team_size":1,"max_wait":"1m"}]}`)})
			ta := events.Ticket{TicketID: "ta", PlayerID: "a", Skill: 1650, Mode: "casual", CreatedAt: t0}
			if err := events.NewPublisher(e.js, e.subj).TicketForUnsent(t.Context(), "eu", "gold", ta, "", "m-dead"); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, func() bool {
				res := results(t, told())
				return len(res["a"]) > 0 && len(res["b"]) > 0
			}, "a and b never told: m-dead not settled by ta published again")
			testkit.Eventually(t, 5*time.Second, func() bool {
				return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0
			}, "ta published again never acked")
			time.Sleep(300 * time.Millisecond) // anything else they would be told
			for p, rs := range results(t, told()) {
				if len(rs) != 1 || rs[0].Status != events.StatusMatched || rs[0].MatchID != "m-dead" {
					t.Errorf("%s told %+v, want matched (m-dead) once", p, rs)
				}
			}
			if ms := published(t, allocs()); len(ms) != 1 || ms[0].MatchID != "m-dead" {
				t.Errorf("published %+v, want m-dead once", ms)
			}
		})
	}
}

// TestPartialClaimsLeftByTheShardsLastOwnerAreUndoneAtOnce: a match of
// the shard stored before its runner took the shard holds one ticket's
// claim and not the other's (its owner, cut off, had the other claim
// fail, and lost the shard). The new owner's recovery undoes it at once
// rather than wait staleClaim, by which time the ticket it held was
// past its max wait (chaos S63, S64: expired needlessly). A match stored
// after the runner took the shard (its own commit, maybe still
// claiming), or another shard's, still waits, unless another owner
// holds its other ticket: its commit, meeting that owner, lost that
// claim, and the match is undone at once too.
func TestPartialClaimsLeftByTheShardsLastOwnerAreUndoneAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		region       string
		runnerBefore bool   // the runner took the shard before the match was stored
		paOwner      string // who else holds its other ticket's claim
		want         recovery
	}{
		{"left by the last owner", "eu", false, "", released},
		{"stored since the runner took the shard", "eu", true, "", undecided},
		{"another shard's", "us", false, "", undecided},
		// Its commit lost that claim, and its give-back of lo's failed
		// (review R3).
		{"its other ticket another owner's", "eu", true, events.MatchOwner("m-other"), released},
		{"its other ticket cancelled", "us", false, events.OwnerCancelled, released},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			w, err := New(Config{}, testkit.JetStream(t, testkit.Connect(t, e.srv)), e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			if err := w.bindState(t.Context()); err != nil {
				t.Fatal(err)
			}
			shard := events.Shard{Region: "eu", Tier: "gold"}
			var r *runner
			if tc.runnerBefore {
				r = newRunner(w, shard)
			}
			ctx := t.Context()
			const matchID = "m-partial"
			claims := e.loClaimedBy(t, w, matchID, tc.region)
			if tc.paOwner != "" {
				if won, _, err := claims.Claim(ctx, "pa", tc.paOwner); err != nil || !won {
					t.Fatal(won, err)
				}
			}
			if r == nil {
				r = newRunner(w, shard)
			}
			if got := r.commits.rec.recoverMatch(ctx, matchID, "lo"); got != tc.want {
				t.Fatalf("recoverMatch = %v, want %v", got, tc.want)
			}
			owner, err := claims.Owner(ctx, "lo")
			if err != nil {
				t.Fatal(err)
			}
			decision, err := w.state.decisions.Decided(ctx, matchID)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == released && (owner != "" || decision != events.DecisionUndone) {
				t.Fatalf("lo claimed %q, match decided %q; want lo free and the match undone", owner, decision)
			}
			if tc.want == undecided && (owner != events.MatchOwner(matchID) || decision != "") {
				t.Fatalf("lo claimed %q, match decided %q; want both left as they were", owner, decision)
			}
			if other, err := claims.Owner(ctx, "pa"); err != nil || other != tc.paOwner {
				t.Fatalf("pa claimed %q (%v), want %q's still", other, err, tc.paOwner)
			}
		})
	}
}

// racingDecision is a JetStream whose matches bucket runs race before
// the first decision's create: another commit of the match deciding it
// first.
type racingDecision struct {
	jetstream.JetStream
	bucket string
	race   func()
	once   sync.Once
}

func (r *racingDecision) WrapKeyValue(kv jetstream.KeyValue) jetstream.KeyValue {
	if kv.Bucket() != r.bucket {
		return kv
	}
	return racingDecisionKV{KeyValue: kv, r: r}
}

type racingDecisionKV struct {
	jetstream.KeyValue
	r *racingDecision
}

func (kv racingDecisionKV) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	if strings.HasSuffix(key, ".decided") && kv.r.race != nil {
		kv.r.once.Do(kv.r.race)
	}
	return kv.KeyValue.Create(ctx, key, v, o...)
}

// TestARecoveryThatLosesItsDecisionReadsTheClaimsAgain: a recovery finds
// an old match holding lo's claim and not pa's, and decides it undone;
// but between its read of the claims and its decision, another commit
// of the same match (its tickets formed again) claimed pa and decided it
// published. The recovery follows "published" with the claims read
// again: all held, the match is sent, and no claim is given back. Before,
// it took the claims it had read for a requeued match's and gave back
// the claims of a match being sent (review R3).
func TestARecoveryThatLosesItsDecisionReadsTheClaimsAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	racing := &racingDecision{JetStream: testkit.JetStream(t, testkit.Connect(t, e.srv)), bucket: e.subj.MatchesBucket()}
	w := e.faultWorker(t, racing, time.Second)
	r := newRunner(w, events.Shard{Region: "eu", Tier: "gold"})
	const matchID = "m-raced"
	claims := e.loClaimedBy(t, w, matchID, "eu")
	decisions, err := events.NewDecisions(t.Context(), testkit.JetStream(t, testkit.Connect(t, e.srv)), e.subj)
	if err != nil {
		t.Fatal(err)
	}
	racing.race = func() {
		if won, _, err := claims.Claim(t.Context(), "pa", events.MatchOwner(matchID)); err != nil || !won {
			t.Errorf("the other commit's claim of pa: %v, %v", won, err)
		}
		if _, _, err := decisions.Decide(t.Context(), matchID, events.DecisionPublished); err != nil {
			t.Errorf("the other commit's decision: %v", err)
		}
	}
	later := time.Now().Add(staleClaim + time.Second)
	r.commits.rec.now = func() time.Time { return later }
	if got := r.commits.rec.recoverMatch(t.Context(), matchID, "lo"); got != recovered {
		t.Fatalf("recoverMatch = %v, want recovered (the match sent)", got)
	}
	for _, id := range []string{"lo", "pa"} {
		if owner, err := claims.Owner(t.Context(), id); err != nil || owner != events.MatchOwner(matchID) {
			t.Fatalf("%s claimed %q (%v), want the published match's", id, owner, err)
		}
	}
}
