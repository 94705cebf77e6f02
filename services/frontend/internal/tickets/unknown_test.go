package tickets

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// cutKV is a bucket whose creates and reads wait out their context
// while cut is set: the frontend cut off from it, the matchers maybe not.
type cutKV struct {
	jetstream.KeyValue
	cut *atomic.Bool
}

func (k cutKV) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	if k.cut.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return k.KeyValue.Create(ctx, key, v, o...)
}

func (k cutKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if k.cut.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return k.KeyValue.Get(ctx, key)
}

// A creation whose writes failed while it may be queued, and whose
// withdrawal's claim failed through every try with no claim read (timed
// out, or refused for now), cannot know whether a matcher will put its
// ticket in a match: it answers the ticket as queued, withdraws nothing
// later, and its follower hears its outcome (here its expiry). Before,
// it answered an error and withdrew the ticket in the background, which
// a matcher often beat: a no-show in its partners' game (chaos S57b: 13,
// matched 5-7 s after their creations answered 503, their frontend cut
// off from the claims bucket and the matchers not).
func TestATicketOfUnknownFateIsAnswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault func(*toldEnv) *refusingRecords
		cut   bool // claims time out; else they are refused for now
	}{
		{"its record stored, its queue ack lost", func(e *toldEnv) *refusingRecords {
			e.s.js = lostAcks{e.s.js}
			return nil
		}, false},
		{"its record refused", (*toldEnv).refuseRecords, false},
		{"its record refused, its claim timed out", (*toldEnv).refuseRecords, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			records := tc.fault(e)
			var fails atomic.Int32
			fails.Store(1 << 30) // every claim refused for now until the creation answered
			var cut atomic.Bool
			cut.Store(tc.cut)
			var cjs jetstream.JetStream = failingClaims{JetStream: e.js, fails: &fails}
			if tc.cut {
				cjs = claimsWrapped{e.js, func(kv jetstream.KeyValue) jetstream.KeyValue { return cutKV{KeyValue: kv, cut: &cut} }}
			}
			claims, err := events.NewClaims(t.Context(), cjs, e.subj)
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
			cut.Store(false)
			if records != nil {
				records.refusing.Store(false)
				testkit.Eventually(t, 5*time.Second, func() bool {
					_, err := records.KeyValue.Get(t.Context(), id)
					return err == nil
				}, "the held record was not stored once the bucket took puts")
			}
			// Its claim read in the background (tellLater) finds none and
			// leaves it be.
			testkit.Eventually(t, 10*time.Second, func() bool { return e.s.claimReads.Load() == 0 }, "its claim still not read")
			if owner, _ := e.s.claims.Owner(t.Context(), id); owner != "" {
				t.Fatalf("ticket claimed %q once the bucket answered; want it left to a matcher or its expiry", owner)
			}
			// Its follower's tracker expires it at its max wait.
			if r := e.s.Expire(t.Context(), id); r != results.RetryNone {
				t.Fatalf("expiry left %v owed, want it ended", r)
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

// refusablePlayers gives e's service a players bucket whose updates are
// refused while the switch it returns is set (a take refused).
func (e *toldEnv) refusablePlayers(t *testing.T) *atomic.Bool {
	t.Helper()
	var refusing atomic.Bool
	e.wrapPlayers(t, func(kv jetstream.KeyValue) jetstream.KeyValue {
		return refusingUpdates{KeyValue: kv, refusing: &refusing}
	})
	return &refusing
}

// wrapPlayers gives e's service a players bucket seen through wrap.
func (e *toldEnv) wrapPlayers(t *testing.T, wrap func(jetstream.KeyValue) jetstream.KeyValue) {
	t.Helper()
	players, err := events.NewPlayers(t.Context(), claimsWrapped{e.js, wrap}, e.subj, e.s.claims)
	if err != nil {
		t.Fatal(err)
	}
	e.s.players = players
}

// A ticket that replaces its player's waiting one, stored and queued but
// its take refused and its withdrawal's fate unknown, is not answered:
// a 202 would say the waiting ticket is superseded while a matcher may
// still match it (the player in two matches, a review's finding). It is
// withdrawn in the background, as before.
func TestAReplacementOfUnknownFateIsNotAnswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault func(e *toldEnv, refusing *atomic.Bool)
	}{
		{"its take refused", func(_ *toldEnv, refusing *atomic.Bool) { refusing.Store(true) }},
		{"its record refused", func(e *toldEnv, _ *atomic.Bool) { e.refuseRecords() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			refusing := e.refusablePlayers(t)
			e.create(t, "pat")
			tc.fault(e, refusing)
			var fails atomic.Int32
			fails.Store(1 << 30)
			var err error
			if e.s.claims, err = events.NewClaims(t.Context(), failingClaims{JetStream: e.js, fails: &fails}, e.subj); err != nil {
				t.Fatal(err)
			}
			if err := e.createPat(t); err == nil {
				t.Fatal("a replacement of unknown fate answered: its player's waiting ticket may still be matched")
			}
			if waiting := testutil.ToFloat64(e.s.withdrawals.gauge); waiting != 1 {
				t.Fatalf("%v withdrawals waiting, want the replacement's", waiting)
			}
			if n := testutil.ToFloat64(e.s.withdrawals.made.WithLabelValues(unknownFate)); n != 1 {
				t.Fatalf("%v withdrawals counted of unknown fate, want 1", n)
			}
		})
	}
}

// heardSuperseding is a tracker that hears the ticket asked about
// supersede its player's older one from its from-th question on, and
// counts the questions and the tickets untracked. takeIn, if set, is
// called then: its shard's owner taking the ticket in (chaos S65).
type heardSuperseding struct {
	noTracker
	from             int32
	calls, untracked *atomic.Int32
	takeIn           func(id string)
}

func (h heardSuperseding) HeardSuperseding(ctx context.Context, id string) bool {
	heard := h.calls.Add(1) >= h.from && ctx.Err() == nil // as the tracker may answer a call whose ctx is done
	if heard && h.takeIn != nil {
		h.takeIn(id)
	}
	return heard
}

func (h heardSuperseding) Untrack(context.Context, string) { h.untracked.Add(1) }

// ownerTakesIn is a shard's owner taking ticket id of pat in, through
// buckets e's frontend cannot reach: its own players and claims.
func (e *toldEnv) ownerTakesIn(t *testing.T) func(id string) {
	t.Helper()
	claims, err := events.NewClaims(t.Context(), e.js, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	players, err := events.NewPlayers(t.Context(), e.js, e.subj, claims)
	if err != nil {
		t.Fatal(err)
	}
	return func(id string) {
		lt := events.LiveTicket{TicketID: id, Players: []string{"pat"}, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: time.Now().UTC()}
		if _, err := players.Take(t.Context(), lt, e.s.tellSuperseded); err != nil {
			t.Errorf("the owner's take of %s: %v", id, err)
		}
	}
}

// The same replacement, found its player's live ticket all the same (the
// owner took it in, and the tracker heard it supersede the waiting one),
// is answered as queued: a later check of a match holding an older ticket
// of the player finds it stale, as after a take that succeeded, and an
// error was a no-show once the
// owner matched it (chaos S65: the "superseded by" result came 5-7 s
// before the frontend's 503). Found before its withdrawal, it is not
// withdrawn; found once its writes failed, it is not taken again (its
// answer counted once). Heard but not named by its player's entry (its
// take told the waiting ticket superseded, then failed to write it:
// another ticket of the player may be live), it is not answered (review
// R2).
func TestAReplacementFoundItsPlayersLiveTicketIsAnswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		records       bool  // its record refused; else its take
		from, calls   int32 // heard from question from on; questions asked
		takenIn       bool  // its owner took it in
		answered      bool
		withdrawn     float64
		answeredLater float64
	}{
		{"its take refused, found before its withdrawal", false, 1, 1, true, true, 0, 0},
		{"its take refused, found during its withdrawal", false, 2, 2, true, true, 1, 1},
		{"its record refused", true, 1, 1, true, true, 1, 1},
		{"heard, not its player's live ticket", false, 1, 2, false, false, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			refusing := e.refusablePlayers(t)
			e.create(t, "pat")
			refusing.Store(true) // the take fails, if it is tried
			if tc.records {
				e.refuseRecords()
			}
			var fails atomic.Int32
			fails.Store(1 << 30)
			var err error
			if e.s.claims, err = events.NewClaims(t.Context(), failingClaims{JetStream: e.js, fails: &fails}, e.subj); err != nil {
				t.Fatal(err)
			}
			var calls, untracked atomic.Int32
			h := heardSuperseding{from: tc.from, calls: &calls, untracked: &untracked}
			if tc.takenIn {
				h.takeIn = e.ownerTakesIn(t)
			}
			e.s.tracker = h
			skill := 1650
			v, err := e.s.Create(t.Context(), identity.Caller{PlayerID: "pat"}, Request{Mode: "1v1", Skill: &skill, Region: "eu"}, "")
			replacement := e.ticketAt(t, 2)
			switch {
			case !tc.answered && err == nil:
				t.Fatalf("answered %+v though pat's entry does not name it", v)
			case tc.answered && err != nil:
				t.Fatalf("a replacement found its player's live ticket told an error: %v", err)
			case tc.answered && (v.Status != events.StatusQueued || v.TicketID != replacement):
				t.Fatalf("answered %+v, want the replacement %s queued", v, replacement)
			}
			if n := calls.Load(); n != tc.calls {
				t.Fatalf("the tracker asked %d times, want %d", n, tc.calls)
			}
			if n := testutil.ToFloat64(e.s.withdrawals.made.WithLabelValues(unknownFate)); n != tc.withdrawn {
				t.Fatalf("%v withdrawals of unknown fate, want %v", n, tc.withdrawn)
			}
			if n := testutil.ToFloat64(e.s.withdrawals.ended.WithLabelValues(answeredUnknown)); n != tc.answeredLater {
				t.Fatalf("%v tickets of unknown fate counted answered, want %v", n, tc.answeredLater)
			}
			if !tc.answered {
				return
			}
			if n := untracked.Load(); n != 0 {
				t.Fatalf("answered ticket untracked %d times: its client would hear nothing", n)
			}
			if waiting := testutil.ToFloat64(e.s.withdrawals.gauge); waiting != 0 {
				t.Fatalf("%v withdrawals left to the background: the answered ticket would be cancelled under its client", waiting)
			}
			if n := testutil.ToFloat64(e.s.withdrawals.elsewhere); n != 1 {
				t.Fatalf("%v replacements counted taken elsewhere, want 1", n)
			}
		})
	}
}

// blockedUpdates is a players bucket whose updates wait until their
// caller gives up: a take cut off after it told the waiting ticket
// superseded. Its shard's owner takes the ticket in meanwhile (takeIn).
type blockedUpdates struct {
	jetstream.KeyValue
	takeIn func(id string)
}

func (b blockedUpdates) Update(ctx context.Context, _ string, v []byte, _ uint64) (uint64, error) {
	var lt events.LiveTicket
	if json.Unmarshal(v, &lt) == nil {
		b.takeIn(lt.TicketID)
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// A client that hangs up while its replacement's take hangs is not
// answered, though the tracker heard the ticket taken in and its
// player's entry names it: nobody reads the 202, so its ticket is
// withdrawn, as before (review R2: asked with its request's end ignored,
// the tracker and the entry answered, and the ticket was left queued, a
// no-show once matched).
func TestAReplacementOfAClientThatHungUpIsWithdrawn(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	e.create(t, "pat")
	takeIn := e.ownerTakesIn(t)
	e.wrapPlayers(t, func(kv jetstream.KeyValue) jetstream.KeyValue { return blockedUpdates{KeyValue: kv, takeIn: takeIn} })
	var calls, untracked atomic.Int32
	e.s.tracker = heardSuperseding{from: 1, calls: &calls, untracked: &untracked}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond) // the client's hang-up
	defer cancel()
	skill := 1650
	if v, err := e.s.Create(ctx, identity.Caller{PlayerID: "pat"}, Request{Mode: "1v1", Skill: &skill, Region: "eu"}, ""); err == nil {
		t.Fatalf("answered %+v to a client that hung up", v)
	}
	replacement := e.ticketAt(t, 2)
	if owner, err := e.s.claims.Owner(t.Context(), replacement); err != nil || owner != events.OwnerCancelled {
		t.Fatalf("replacement claimed %q (%v), want cancelled: withdrawn", owner, err)
	}
}

// refusedUpdates is a players bucket whose next `left` updates are
// refused for now with err, and then pass.
type refusedUpdates struct {
	jetstream.KeyValue
	left *atomic.Int32
	err  error
}

func (k refusedUpdates) Update(ctx context.Context, key string, v []byte, last uint64) (uint64, error) {
	if k.left.Add(-1) >= 0 {
		return 0, k.err
	}
	return k.KeyValue.Update(ctx, key, v, last)
}

// The refusals for now of a write: JetStream's for a bucket without a
// leader (503), and for a publish of the very message another publish
// is storing (a take's telling racing its matcher's, chaos S64).
var (
	errNoLeader  = &jetstream.APIError{Code: http.StatusServiceUnavailable, Description: "test: JetStream system temporarily unavailable"}
	errInProcess = &jetstream.APIError{Code: http.StatusConflict, ErrorCode: duplicateInProcess, Description: "test: duplicate message id is in process"}
)

// A replacement whose take is refused for now (the players bucket's
// leader stepping down) is taken again within the creation, not
// withdrawn at the first refusal: it is answered, live, its player's
// waiting ticket superseded, and nothing was withdrawn. Before, it was
// withdrawn at once and answered 503; and where the withdrawal could not
// reach the claims bucket either, a matcher that could took it in and
// matched it (chaos S62: two no-shows). Refused past takeTries, it is
// withdrawn and answered 503, as before.
func TestAReplacementsTakeRefusedForNowIsTriedAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		refused int32
		err     error
		taken   bool
	}{
		{"taken on a later try", 3, errNoLeader, true},
		{"taken once the same message is stored", 3, errInProcess, true},
		{"refused past its tries", 1 << 30, errNoLeader, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			var left atomic.Int32
			e.wrapPlayers(t, func(kv jetstream.KeyValue) jetstream.KeyValue {
				return refusedUpdates{KeyValue: kv, left: &left, err: tc.err}
			})
			waiting := e.create(t, "pat")
			left.Store(tc.refused)
			skill := 1650
			v, err := e.s.Create(t.Context(), identity.Caller{PlayerID: "pat"}, Request{Mode: "1v1", Skill: &skill, Region: "eu"}, "")
			if n := left.Load(); n == tc.refused {
				t.Fatal("no update refused: the take was not refused as the test means")
			}
			if !tc.taken {
				id := e.ticketAt(t, 2) // the waiting ticket is the first
				if owner, oerr := e.s.claims.Owner(t.Context(), id); err == nil || oerr != nil || owner != events.OwnerCancelled {
					t.Fatalf("creation answered %v, its ticket claimed %q (%v); want an error and the ticket withdrawn", err, owner, oerr)
				}
				if n := testutil.ToFloat64(e.s.withdrawals.made.WithLabelValues(withdrawnOutcome)); n != 1 {
					t.Fatalf("%v withdrawals counted withdrawn, want 1", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("a replacement whose take was refused for now told an error: %v", err)
			}
			if live, err := e.s.players.Live(t.Context(), "pat"); err != nil || live != v.TicketID {
				t.Fatalf("pat's live ticket %q (%v), want the replacement %s", live, err, v.TicketID)
			}
			if owner, err := e.s.claims.Owner(t.Context(), waiting); err != nil || owner != events.OwnerSuperseded {
				t.Fatalf("waiting ticket claimed %q (%v), want superseded", owner, err)
			}
			for _, o := range madeOutcomes {
				if n := testutil.ToFloat64(e.s.withdrawals.made.WithLabelValues(o)); n != 0 {
					t.Fatalf("%v withdrawals counted %s for a live ticket", n, o)
				}
			}
			if owner, err := e.s.claims.Owner(t.Context(), v.TicketID); err != nil || owner != "" {
				t.Fatalf("replacement claimed %q (%v), want none: it waits for a match", owner, err)
			}
		})
	}
}

// heardMatched is a tracker that heard every ticket matched: the
// frontend's one subscription hears a matcher's results while its own
// reads and writes of the buckets fail (chaos S62).
type heardMatched struct{ noTracker }

func (heardMatched) Heard(ctx context.Context, id string) *events.Result {
	if ctx.Err() != nil {
		return nil // as the tracker may answer a call whose ctx is done
	}
	return &events.Result{TicketID: id, PlayerID: "pat", Status: events.StatusMatched, MatchID: "m1"}
}

// cutClaims is a claims bucket its frontend cannot reach: every claim
// and every read refused at once (the bucket without a leader for it),
// or, blocking, never answered until its caller gives up (a cut).
type cutClaims struct {
	jetstream.KeyValue
	blocking bool
}

func (c cutClaims) fail(ctx context.Context) error {
	if c.blocking {
		<-ctx.Done()
		return ctx.Err()
	}
	return &jetstream.APIError{Code: http.StatusServiceUnavailable, Description: "test: JetStream system temporarily unavailable"}
}

func (c cutClaims) Create(ctx context.Context, _ string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	return 0, c.fail(ctx)
}

func (c cutClaims) Get(ctx context.Context, _ string) (jetstream.KeyValueEntry, error) {
	return nil, c.fail(ctx)
}

// A replacement of unknown fate whose match the tracker heard is
// answered, as one whose match's claim was read: in chaos S62 a
// replacement's frontend could reach neither the players nor the claims
// bucket, while its shard's owner took it in and matched it; its client,
// told 503, never came (two no-shows). Nothing is left to withdraw. The
// claims' calls refused at once, and timed out, which spends the
// withdrawal's whole bound before the tracker is asked.
func TestAReplacementOfUnknownFateHeardMatchedIsAnswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		blocking bool
	}{{"refused", false}, {"timed out", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			refusing := e.refusablePlayers(t)
			e.create(t, "pat")
			refusing.Store(true)
			var err error
			if e.s.claims, err = events.NewClaims(t.Context(), claimsWrapped{e.js, func(kv jetstream.KeyValue) jetstream.KeyValue {
				return cutClaims{KeyValue: kv, blocking: tc.blocking}
			}}, e.subj); err != nil {
				t.Fatal(err)
			}
			e.s.tracker = heardMatched{}
			skill := 1650
			v, err := e.s.Create(t.Context(), identity.Caller{PlayerID: "pat"}, Request{Mode: "1v1", Skill: &skill, Region: "eu"}, "")
			if err != nil {
				t.Fatalf("a replacement heard matched told an error: %v", err)
			}
			if v.Status != events.StatusMatched || v.MatchID != "m1" {
				t.Fatalf("answered %+v, want matched in m1", v)
			}
			if waiting := testutil.ToFloat64(e.s.withdrawals.gauge); waiting != 0 {
				t.Fatalf("%v withdrawals waiting for a ticket in a match", waiting)
			}
			if n := testutil.ToFloat64(e.s.withdrawals.made.WithLabelValues(matchHeard)); n != 1 {
				t.Fatalf("%v withdrawals counted as answered from a heard result, want 1", n)
			}
		})
	}
}

// A claim read and found gone is newer news than a "matched" heard (the
// allocator gives a match's claims back when it requeues its tickets):
// the replacement of unknown fate is then not answered, as before.
func TestAHeardMatchDoesNotOutweighAClaimReadGone(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	refusing := e.refusablePlayers(t)
	e.create(t, "pat")
	refusing.Store(true)
	var fails atomic.Int32
	fails.Store(1 << 30) // every claim refused, every read answered
	var err error
	if e.s.claims, err = events.NewClaims(t.Context(), failingClaims{JetStream: e.js, fails: &fails}, e.subj); err != nil {
		t.Fatal(err)
	}
	e.s.tracker = heardMatched{}
	if err := e.createPat(t); err == nil {
		t.Fatal("a replacement whose claim was read gone answered from a match heard before")
	}
	if waiting := testutil.ToFloat64(e.s.withdrawals.gauge); waiting != 1 {
		t.Fatalf("%v withdrawals waiting, want the replacement's", waiting)
	}
}

// droppingPublishes is a JetStream that loses every ticket's publish
// while dropping is set (an async one never acked, a sync one waits out
// its context), as a cut between the frontend and the stream does.
type droppingPublishes struct {
	jetstream.JetStream
	dropping *atomic.Bool
}

func (d droppingPublishes) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if d.dropping.Load() {
		return testkit.LostAck(m), nil
	}
	return d.JetStream.PublishMsgAsync(m, opts...)
}

func (d droppingPublishes) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if d.dropping.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return d.JetStream.PublishMsg(ctx, m, opts...)
}

// A ticket answered with its publish lost and its fate unknown is
// published again in the background until acked, so that it is queued
// as its 202 says, instead of waiting its max wait for its expiry (a
// review's finding).
func TestAnAnsweredTicketWhosePublishWasLostIsQueuedLater(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	var dropping atomic.Bool
	dropping.Store(true)
	e.s.js = droppingPublishes{JetStream: e.s.js, dropping: &dropping}
	var fails atomic.Int32
	fails.Store(1 << 30)
	claims, err := events.NewClaims(t.Context(), failingClaims{JetStream: e.js, fails: &fails}, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	e.s.claims = claims
	if err := e.createPat(t); err != nil {
		t.Fatalf("creation answered %v with its fate unknown", err)
	}
	if id := e.queuedTicket(t); id != "" {
		t.Fatalf("ticket %s queued while every publish was lost", id)
	}
	dropping.Store(false)
	testkit.Eventually(t, 5*time.Second, func() bool { return e.queuedTicket(t) != "" },
		"the answered ticket was never queued once publishes went through")
	if got := testutil.ToFloat64(e.s.withdrawals.ended.WithLabelValues(answeredUnknown)); got != 1 {
		t.Fatalf("%v creations counted answered with their fate unknown, want 1", got)
	}
}

// landedKV is a claims bucket whose creates land but whose answers are
// lost, and whose reads wait out their context, while cut is set: the
// frontend cut off from it just after its withdrawal's claim was stored
// (matchFirst: just after a matcher's claim of the ticket was).
type landedKV struct {
	jetstream.KeyValue
	cut        *atomic.Bool
	matchFirst bool
}

func (k landedKV) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	if k.matchFirst {
		_, _ = k.KeyValue.Create(ctx, key, []byte(events.MatchOwner("m-1")))
	}
	rev, err := k.KeyValue.Create(ctx, key, v, o...)
	if k.cut.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return rev, err
}

func (k landedKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if k.cut.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return k.KeyValue.Get(ctx, key)
}

// A ticket answered as queued though its withdrawal's fate was unknown,
// whose withdrawal's claim had landed unanswered, is told cancelled once
// the claims bucket answers its frontend: no matcher can take it, and it
// heard nothing until a matcher met the claim or its expiry came (chaos
// S60: 16 tickets, told 6.9-12.9 s after their answer). One a matcher
// claimed first is left to its match: its claim is read once, and nothing
// is told or tried again.
func TestATicketWhoseWithdrawalLandedUnansweredIsToldCancelled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		matchFirst bool
	}{
		{"its withdrawal's claim landed", false},
		{"a match's claim came first", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			records := e.refuseRecords()
			var cut atomic.Bool
			cut.Store(true)
			wrap := func(kv jetstream.KeyValue) jetstream.KeyValue {
				return landedKV{KeyValue: kv, cut: &cut, matchFirst: tc.matchFirst}
			}
			claims, err := events.NewClaims(t.Context(), claimsWrapped{e.js, wrap}, e.subj)
			if err != nil {
				t.Fatal(err)
			}
			e.s.claims = claims
			if err := e.createPat(t); err != nil {
				t.Fatalf("creation answered %v: its fate was unknown to it", err)
			}
			id := e.queuedTicket(t)
			if r := e.stored(t, "pat"); r != nil && r.Status != events.StatusQueued {
				t.Fatalf("told %s while the claims bucket was cut off", r.Status)
			}
			cut.Store(false) // the claims bucket answers again
			records.refusing.Store(false)
			if !tc.matchFirst {
				testkit.Eventually(t, 10*time.Second, func() bool {
					r := e.stored(t, "pat")
					return r != nil && r.TicketID == id && r.Status == events.StatusCancelled
				}, "the player was not told cancelled once its frontend could read the withdrawal's claim")
				return
			}
			testkit.Eventually(t, 10*time.Second, func() bool { return e.s.claimReads.Load() == 0 }, "the match's claim still read again and again")
			if r := e.stored(t, "pat"); r != nil && r.Status != events.StatusQueued {
				t.Fatalf("a ticket in a match told %s by its creation's frontend", r.Status)
			}
		})
	}
}
