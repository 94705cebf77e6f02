package tickets

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// flakyPut is the tickets bucket with its first fails puts refused at
// once, as JetStream does through a bucket leader change (review R2,
// finding 2). It keeps each try's deadline.
type flakyPut struct {
	jetstream.KeyValue
	fails     int32
	puts      atomic.Int32
	mu        sync.Mutex
	deadlines []time.Time
}

func (f *flakyPut) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	d, _ := ctx.Deadline()
	f.mu.Lock()
	f.deadlines = append(f.deadlines, d)
	f.mu.Unlock()
	if f.puts.Add(1) <= f.fails {
		return 0, &jetstream.APIError{Code: http.StatusServiceUnavailable, Description: "test: KV leader lost"}
	}
	return f.KeyValue.Put(ctx, key, value)
}

// queuedTicket is the one ticket in TICKETS, or "" if none is.
func (e *toldEnv) queuedTicket(t *testing.T) string {
	t.Helper()
	switch n := testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()); n {
	case 0:
		return ""
	case 1:
	default:
		t.Fatalf("%d tickets queued, want at most 1", n)
	}
	return e.ticketAt(t, 1)
}

// ticketAt is the id of the ticket TICKETS stored at seq.
func (e *toldEnv) ticketAt(t *testing.T, seq uint64) string {
	t.Helper()
	st, err := e.js.Stream(t.Context(), e.subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatal(err)
	}
	var tk events.Ticket
	if err := json.Unmarshal(msg.Data, &tk); err != nil {
		t.Fatal(err)
	}
	return tk.TicketID
}

// checkWithdrawn fails unless the ticket Create answered an error for is
// not live: never queued, or claimed cancelled with its player told and
// its shard sent a cancel notice (what a DELETE does), so no matcher
// puts it in a match nobody follows.
func checkWithdrawn(t *testing.T, e *toldEnv, createErr error, notices func() int) {
	t.Helper()
	if createErr == nil {
		t.Fatal("Create answered success")
	}
	id := e.queuedTicket(t)
	if id == "" {
		return
	}
	owner, err := e.s.claims.Owner(t.Context(), id)
	if err != nil || owner != events.OwnerCancelled {
		t.Fatalf("Create failed (%v) but ticket %s is queued and claimed %q (%v): a matcher will match a ticket nobody follows", createErr, id, owner, err)
	}
	if r := e.stored(t, "pat"); r == nil || r.TicketID != id || r.Status != events.StatusCancelled {
		t.Fatalf("the player was told %+v, want cancelled of %s", r, id)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return notices() > 0 }, "no cancel notice for the withdrawn ticket")
}

func (e *toldEnv) createPat(t *testing.T) error {
	t.Helper()
	return e.createPatKeyed(t, "")
}

// createPatKeyed is createPat with an Idempotency-Key, as a browser
// sends it ("": none): the keyed creation path (createKeyed).
func (e *toldEnv) createPatKeyed(t *testing.T, key string) error {
	t.Helper()
	skill := 1650
	_, err := e.s.Create(t.Context(), identity.Caller{PlayerID: "pat"}, Request{Mode: "1v1", Skill: &skill, Region: "eu"}, key)
	return err
}

// creationPaths are Create's two paths, each test of the take-first order
// run on both: without a key (as the load tool) and with one (as every
// browser).
var creationPaths = []struct{ name, key string }{{"unkeyed", ""}, {"keyed", "k-pat"}}

func (e *toldEnv) cancelNotices(t *testing.T) func() int {
	t.Helper()
	tier, _ := events.DefaultTiers.For(1650)
	got := testkit.Collect(t, e.nc, e.subj.Cancel("eu", tier))
	return func() int { return len(got()) }
}

// A record whose put keeps failing while the ticket's publish is acked:
// Create answers an error, and the ticket it queued is withdrawn before.
func TestFailedStoreWithdrawsTheQueuedTicket(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	kv := &flakyPut{KeyValue: e.s.kv, fails: 1 << 30}
	e.s.kv = kv
	notices := e.cancelNotices(t)
	checkWithdrawn(t, e, e.createPat(t), notices)
	if n := kv.puts.Load(); n < 2 {
		t.Fatalf("the record's put was tried %d times, want it tried again", n)
	}
}

// A put that fails once is tried again (it is idempotent): the ticket
// is created, stored and queued, and nothing is claimed.
func TestStoreRetriesAFailedPut(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	e.s.kv = &flakyPut{KeyValue: e.s.kv, fails: 1}
	if err := e.createPat(t); err != nil {
		t.Fatalf("Create after one failed put: %v", err)
	}
	id := e.queuedTicket(t)
	if _, err := e.s.Record(t.Context(), id); err != nil {
		t.Fatalf("record of %s: %v", id, err)
	}
	if owner, err := e.s.claims.Owner(t.Context(), id); err != nil || owner != "" {
		t.Fatalf("claim %q %v, want none", owner, err)
	}
}

// A ticket is made its player's live ticket before it is queued: a
// take that fails (here the players bucket is gone) answers an error and
// queues nothing, so no matcher is handed a ticket nobody follows.
func TestFailedTakeQueuesNothing(t *testing.T) {
	t.Parallel()
	for _, p := range creationPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			if err := e.js.DeleteKeyValue(t.Context(), e.subj.PlayersBucket()); err != nil {
				t.Fatal(err)
			}
			if err := e.createPatKeyed(t, p.key); err == nil {
				t.Fatal("Create answered success without a players bucket")
			}
			if id := e.queuedTicket(t); id != "" {
				t.Fatalf("Create failed to take ticket %s but queued it", id)
			}
		})
	}
}

// When its shard's owner receives a frontend's ticket, the ticket is its
// player's live ticket already: the owner's take reads it and writes
// nothing, instead of racing the frontend's take with a take of its own
// (BENCHMARKS.md, "Fourth round": that race cost writes and reads again).
func TestQueuedTicketIsLiveAlready(t *testing.T) {
	t.Parallel()
	for _, p := range creationPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			checkLiveWhenQueued(t, newToldEnv(t), p.key)
		})
	}
}

// checkLiveWhenQueued creates a ticket for pat (under key, if any) and
// checks that when it is heard on its shard's subject, it is pat's live
// ticket already.
func checkLiveWhenQueued(t *testing.T, e *toldEnv, key string) {
	t.Helper()
	type seen struct{ queued, live string }
	got := make(chan seen, 1)
	tier, _ := events.DefaultTiers.For(1650)
	sub, err := e.nc.Subscribe(e.subj.Ticket("eu", tier), func(m *nats.Msg) {
		var tk events.Ticket
		_ = json.Unmarshal(m.Data, &tk)
		live, err := e.s.players.Live(context.Background(), "pat")
		if err != nil {
			live = "error: " + err.Error()
		}
		got <- seen{tk.TicketID, live}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := e.createPatKeyed(t, key); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s.queued == "" || s.live != s.queued {
			t.Fatalf("ticket %q queued while pat's live ticket was %q", s.queued, s.live)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the ticket was not heard on its subject")
	}
}

// A creation that replaces a player's waiting ticket and then fails
// leaves the waiting ticket as it was: live and unclaimed (review R1 of
// the take-first order, which superseded it before the new ticket was
// queued, and so left the player with neither when the queue failed).
func TestAFailedCreationKeepsTheWaitingTicket(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault func(t *testing.T, e *toldEnv)
	}{
		{"its queue refused", func(t *testing.T, e *toldEnv) {
			if err := e.js.DeleteStream(t.Context(), e.subj.TicketsStream()); err != nil {
				t.Fatal(err)
			}
		}},
		{"its record refused while it was queued", func(t *testing.T, e *toldEnv) {
			e.s.kv = &flakyPut{KeyValue: e.s.kv, fails: 1 << 30}
		}},
	} {
		for _, p := range creationPaths {
			if p.key != "" && tt.name == "its record refused while it was queued" {
				continue // a keyed creation stores its record before anything else
			}
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				e := newToldEnv(t)
				waiting := e.create(t, "pat")
				tt.fault(t, e)
				if err := e.createPatKeyed(t, p.key); err == nil {
					t.Fatal("Create succeeded")
				}
				owner, err := e.s.claims.Owner(t.Context(), waiting)
				if err != nil || owner != "" {
					t.Fatalf("the waiting ticket %s is claimed %q (%v) after a failed replacement: pat has lost it", waiting, owner, err)
				}
				if live, err := e.s.players.Live(t.Context(), "pat"); err != nil || live != waiting {
					t.Fatalf("pat's live ticket %q (%v), want the waiting %s", live, err, waiting)
				}
			})
		}
	}
}

// A player whose last ticket is decided (here cancelled) gets the next
// one taken before it is queued too: only a waiting ticket sends a
// creation the long way (queueThenTake).
func TestNextTicketAfterADecidedOneIsLiveWhenQueued(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	first := e.create(t, "pat")
	if _, err := e.s.Cancel(t.Context(), identity.Caller{PlayerID: "pat"}, first, "test"); err != nil {
		t.Fatal(err)
	}
	checkLiveWhenQueued(t, e, "")
}

// pat's waiting ticket W is claimed by a match being committed (its
// claims made, its check not read yet, or a dead matcher's partial match
// awaiting recovery), and pat's new creation fails to queue. The match's
// check must still find W live: finding the new ticket, it would undo the
// match and supersede W by a ticket that was never queued (review R1 of
// the keyed take first: TakeFirst counted a claimed W as decided).
func TestAFailedCreationKeepsTheTicketAMatchIsCommitting(t *testing.T) {
	t.Parallel()
	for _, p := range creationPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			waiting := e.create(t, "pat")
			if won, _, err := e.s.claims.Claim(t.Context(), waiting, events.MatchOwner("m1")); err != nil || !won {
				t.Fatalf("claim for match: %v %v", won, err)
			}
			if err := e.js.DeleteStream(t.Context(), e.subj.TicketsStream()); err != nil {
				t.Fatal(err)
			}
			if err := e.createPatKeyed(t, p.key); err == nil {
				t.Fatal("Create succeeded without a tickets stream")
			}
			// What the match's commit (or its recovery) reads next.
			stale, err := e.s.players.Stale(t.Context(), map[string][]string{waiting: {"pat"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(stale) > 0 {
				t.Fatalf("after a failed creation, the match of pat's waiting ticket %s finds it stale (live %s): the match is undone and %s superseded by a ticket never queued", waiting, stale[waiting], waiting)
			}
		})
	}
}

// lostAcks is a JetStream whose async publishes are sent and stored but
// whose acks never come back: a cut that loses them, with the services'
// async publish timeout (30 s) not yet run out.
// lostAcks is a JetStream whose ticket publishes are stored but never
// answered (a cut that holds the acks): an async one's future never
// answers, and a PublishMsg waits out its context.
type lostAcks struct{ jetstream.JetStream }

func (l lostAcks) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if _, err := l.JetStream.PublishMsg(context.Background(), m); err != nil {
		return nil, err
	}
	return testkit.LostAck(m), nil
}

func (l lostAcks) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if _, err := l.JetStream.PublishMsg(context.Background(), m); err != nil {
		return nil, err
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// A ticket whose queue acks are all lost, for a caller whose context has
// no deadline (a request's), fails within its bounds (a call's, then
// finishWithin's) and is withdrawn. Before, Create waited for the ack
// until the async publish timeout, 30 s, holding its admission slot:
// chaos S43 counted 17 such creations.
// The unkeyed path's: the keyed one publishes with PublishMsg, bound by
// the JetStream's default timeout.
func TestALostQueueAckEndsTheCreationWithinACallsBound(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	e.s.js = lostAcks{e.s.js}
	notices := e.cancelNotices(t)
	done := make(chan error, 1)
	go func() { done <- e.createPat(t) }()
	select {
	case err := <-done:
		checkWithdrawn(t, e, err, notices)
	case <-time.After(events.ClaimCallTimeout + finishWithin + withdrawTimeout):
		t.Fatal("Create still waiting for a lost ack past its bounds")
	}
}

// failingCreates is a bucket whose first fails creates (claims) are
// refused for now, at once, as JetStream does while the bucket has no
// leader; matchFirst lands a matcher's claim of the ticket as it comes
// back.
type failingCreates struct {
	jetstream.KeyValue
	fails      *atomic.Int32
	matchFirst bool
}

func (f failingCreates) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if f.fails.Add(-1) >= 0 {
		return 0, &jetstream.APIError{Code: http.StatusServiceUnavailable, Description: "test: JetStream system temporarily unavailable"}
	}
	if f.matchFirst {
		_, _ = f.KeyValue.Create(ctx, key, []byte(events.MatchOwner("m-1")))
	}
	return f.KeyValue.Create(ctx, key, value, opts...)
}

// failingClaims is a JetStream whose claims bucket, bound with
// events.BindLeaderGets, is failingCreates.
type failingClaims struct {
	jetstream.JetStream
	fails      *atomic.Int32
	matchFirst bool
}

func (f failingClaims) WrapKeyValue(kv jetstream.KeyValue) jetstream.KeyValue {
	return failingCreates{KeyValue: kv, fails: f.fails, matchFirst: f.matchFirst}
}

// refuseRecordsUnheld makes e's tickets bucket refuse every write, and
// fills the frontend's held records (maxUnstored): a creation whose
// withdrawal's fate is unknown can then neither store its record nor
// hold it, and answers its error (finishOrWithdraw).
func (e *toldEnv) refuseRecordsUnheld() {
	e.refuseRecords()
	for i := range maxUnstored {
		e.s.unstored.hold(fmt.Sprint("held-", i), nil, false)
	}
}

// A creation that fails (its record refused, and no room to hold it)
// while the claims bucket refuses every claim has its withdrawal refused
// too, past the tries within its bound; it is tried again in the
// background, and the ticket is withdrawn once the bucket answers.
// Before, it was left queued, to be matched with nobody following it
// (chaos S48: 77 such tickets in a 39 s claims outage).
func TestAWithdrawalRefusedIsTriedAgain(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	e.refuseRecordsUnheld()
	var fails atomic.Int32
	fails.Store(1 << 30) // until the creation answered, and the first later try
	claims, err := events.NewClaims(t.Context(), failingClaims{JetStream: e.js, fails: &fails}, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	e.s.claims = claims
	notices := e.cancelNotices(t)
	err = e.createPat(t)
	if err == nil {
		t.Fatal("Create answered success")
	}
	id := e.queuedTicket(t)
	if id == "" {
		t.Fatal("nothing queued")
	}
	if owner, _ := e.s.claims.Owner(t.Context(), id); owner != "" {
		t.Fatalf("claimed %q at once, want the withdrawal refused", owner)
	}
	fails.Store(1) // the first later try's; the bucket answers the next
	// Awaited by what the later try does last (it counts its outcome once
	// its claim, its player's result and its notice are out): the claim,
	// written first, was seen before the result was stored.
	testkit.Eventually(t, 15*time.Second, func() bool {
		return testutil.ToFloat64(e.s.withdrawals.ended.WithLabelValues(withdrawnOutcome)) == 1
	}, "the ticket whose withdrawal was refused was never withdrawn")
	checkWithdrawn(t, e, err, notices)
	checkWithdrawals(t, e.s, withdrawnOutcome, 1, 0)
}

// checkWithdrawals fails unless s counts n withdrawals tried again that
// ended with outcome, and waiting still waiting for a try.
func checkWithdrawals(t *testing.T, s *Service, outcome string, n, waiting float64) {
	t.Helper()
	if got := testutil.ToFloat64(s.withdrawals.ended.WithLabelValues(outcome)); got != n {
		t.Errorf("%v withdrawals tried again ended %s, want %v", got, outcome, n)
	}
	if got := testutil.ToFloat64(s.withdrawals.gauge); got != waiting {
		t.Errorf("%v withdrawals waiting, want %v", got, waiting)
	}
}

// A frontend that stops with a withdrawal still to try again says which
// ticket it leaves queued, counts it, and tries it no more (its timer
// stopped: no claim on a closing connection). Before, such withdrawals
// were dropped without a word.
func TestAWithdrawalLeftAtTheStopIsSaid(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	e.refuseRecordsUnheld()
	var fails atomic.Int32
	fails.Store(1 << 30)
	claims, err := events.NewClaims(t.Context(), failingClaims{JetStream: e.js, fails: &fails}, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	e.s.claims = claims
	if err := e.createPat(t); err == nil {
		t.Fatal("Create answered success")
	}
	id := e.queuedTicket(t)
	checkWithdrawals(t, e.s, stoppedWithdrawal, 0, 1)
	e.s.Stop()
	tried := fails.Load()
	checkWithdrawals(t, e.s, stoppedWithdrawal, 1, 0)
	if logs := e.logs.String(); !strings.Contains(logs, "frontend stopping with withdrawals not tried again") || !strings.Contains(logs, id) {
		t.Fatalf("the stop did not say it left %s:\n%s", id, logs)
	}
	time.Sleep(2 * withdrawRetryFirst) // past the first try's latest start
	if fails.Load() != tried {
		t.Fatal("a withdrawal was tried after the stop")
	}
	e.s.withdrawLater(Record{Ticket: events.Ticket{TicketID: "t-late", Mode: "1v1"}})
	checkWithdrawals(t, e.s, stoppedWithdrawal, 2, 0)
}

// hangingCreates is a claims bucket cut off: every claim and read waits
// out its context.
type hangingCreates struct{ jetstream.KeyValue }

func (hangingCreates) Create(ctx context.Context, _ string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func (hangingCreates) Get(ctx context.Context, _ string) (jetstream.KeyValueEntry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

type hangingClaims struct{ jetstream.JetStream }

func (hangingClaims) WrapKeyValue(kv jetstream.KeyValue) jetstream.KeyValue {
	return hangingCreates{kv}
}

// A stop that comes while a try is under way leaves that try to finish
// within its bound; the try, refused its next one, names its ticket as
// left and counts it (review: Stop named only the tickets whose timers
// it stopped, and the gauge kept this one).
func TestAStopDuringATryNamesItsTicket(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	claims, err := events.NewClaims(t.Context(), hangingClaims{e.js}, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	e.s.claims = claims
	e.s.withdrawLater(Record{Ticket: events.Ticket{TicketID: "t-busy", Mode: "1v1", CreatedAt: time.Now()}})
	time.Sleep(withdrawRetryFirst * 3 / 2) // past the first try's latest start, within its bound
	e.s.Stop()
	testkit.Eventually(t, withdrawTimeout+2*time.Second, func() bool {
		return testutil.ToFloat64(e.s.withdrawals.gauge) == 0
	}, "the try under way never ended")
	checkWithdrawals(t, e.s, stoppedWithdrawal, 1, 0)
	if logs := e.logs.String(); !strings.Contains(logs, "frontend stopping: ticket not withdrawn") || !strings.Contains(logs, "t-busy") {
		t.Fatalf("the stop's log does not name t-busy:\n%s", logs)
	}
}
