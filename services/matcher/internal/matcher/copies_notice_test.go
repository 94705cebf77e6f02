package matcher

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// TestRequeuedTicketOutlivesAMatchedNoticeCheck: ticket lo waits at home
// in eu.bronze (its visitor copy was matched in silver, match M). A
// matched notice's claim read finds M; before the runner takes the
// answer back, the allocator requeues M (gives lo's claim back, publishes
// lo again on its home subject). The requeued message meets lo's home
// message in the pool: it must not be acked as a duplicate, for the
// read's answer then drops the home message. It was: lo was nowhere, no
// claim, no message, no pool entry (a reviewer's test). Now it is naked,
// comes back once the read is settled and is pooled as lo.
func TestRequeuedTicketOutlivesAMatchedNoticeCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shard := events.Shard{Region: "eu", Tier: "bronze"}
	r := newRunner(e.boundWorker(t), shard)
	ctx := t.Context()
	cons, err := e.js.Consumer(ctx, e.subj.TicketsStream(), "tickets-eu-bronze")
	if err != nil {
		t.Fatal(err)
	}
	next := func() jetstream.Msg {
		t.Helper()
		if m := fetchOne(t, cons); m != nil {
			return m
		}
		t.Fatal("no message: lo is lost")
		return nil
	}
	e.pub(t, e.subj.Ticket("eu", "bronze"), `{"ticket_id":"lo","player_id":"lo","skill":1100}`)
	r.add(ctx, next())
	r.settleAdmission(ctx, <-r.admitted, false)
	p := r.pools["1v1"]
	home, ok := p.Get("lo")
	if !ok {
		t.Fatal("lo not pooled")
	}
	// M (formed in silver with lo's visitor copy) holds lo's claim.
	const matchID = "m-visitor"
	claims := e.claims(t)
	if lost, err := claims.ClaimAll(ctx, []string{"lo"}, events.MatchOwner(matchID)); err != nil || len(lost) > 0 {
		t.Fatal(lost, err)
	}
	// The matched notice arrives; its claim read finds M.
	r.takeMatchedNotice(ctx, events.MatchedNotice{TicketID: "lo", MatchID: matchID, HomeRegion: "eu", HomeTier: "bronze"})
	check := <-r.copies.checks
	if !check.matched {
		t.Fatal("claim read should have found M")
	}
	// Allocator: no server, requeue (give the claim back, then publish
	// again).
	claims.Release(ctx, []string{"lo"}, events.MatchOwner(matchID))
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: matchID, Mode: "1v1", Region: "eu", Tier: "silver", CreatedAt: time.Now().UTC()}
	mt := matchTicketOf(home, 0)
	mt.Tier = "bronze"
	if err := events.NewPublisher(e.js, e.subj).Requeue(ctx, m, mt); err != nil {
		t.Fatal(err)
	}
	requeued := next()
	r.add(ctx, requeued) // meets the waiting home message
	r.settleCopyCheck(ctx, check, true)
	if p.Contains(home) {
		t.Fatal("the home message, matched in M when read, was kept")
	}
	r.acks.flush()
	again := next() // naked: comes back
	meta, _ := again.Metadata()
	if want, _ := requeued.Metadata(); meta.Sequence.Stream != want.Sequence.Stream {
		t.Fatalf("got message %d, want the requeued one %d", meta.Sequence.Stream, want.Sequence.Stream)
	}
	r.add(ctx, again)
	r.settleAdmission(ctx, <-r.admitted, false)
	// The notice is still remembered: the new message's claim is read
	// (given back since), and it stays.
	r.settleCopyCheck(ctx, <-r.copies.checks, false)
	if e, ok := p.Get("lo"); !ok || e.Seq != meta.Sequence.Stream {
		t.Fatalf("lo not pooled as its requeued message (%v)", ok)
	}
}

// TestNoticeOfATierOfferOutlivesANarrowedWindow: lo (1199, bronze) is
// offered to silver once its skill window crosses the bound; a reload
// then narrows the window, and lo is matched at home. Its visitor copy
// in silver goes at once all the same: the offer is marked on lo's entry
// (pool.Entry.Offered). The commit used to guess it from the window of
// the rules in force, which no longer reached silver: no notice, and the
// copy waited, counted, until its expiry.
func TestNoticeOfATierOfferOutlivesANarrowedWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := newTestClock()
	mf := modesFile(t, neighbourRules)
	w := e.startWorker(t, Config{RulesFile: mf, RulesReload: time.Hour}, clk.set)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, e.subj.Ticket("eu", "bronze"), `{"ticket_id":"lo","player_id":"lo","skill":1199}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.waiting() == 1 }, "lo not pooled")
	clk.add(2 * time.Second) // a window of 20 crosses into silver
	testkit.Eventually(t, 10*time.Second, func() bool {
		return w.waiting() == 2 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 1
	}, "lo not offered to silver")
	narrow := `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","skill_window":{"initial":0,"per_second":0,"max":0}}]`
	if err := os.WriteFile(mf, []byte(`{"modes":`+narrow+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if !w.w.rules.Reload() {
		t.Fatal("narrowed rules not loaded")
	}
	e.pub(t, e.subj.Ticket("eu", "bronze"), `{"ticket_id":"partner","player_id":"partner","skill":1199}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "lo and its partner never met")
	testkit.Eventually(t, 10*time.Second, func() bool {
		return w.waiting() == 0 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 0
	}, "lo's visitor copy left in silver: %d waiting, %d visitors", w.waiting(), testkit.StreamMsgs(t, e.js, e.subj.OffersStream()))
}

// TestMatchedNoticeGoesOnlyWhereCopiesMayWait: a matched notice reaches
// only the runners of shards that may hold a copy of its ticket: its
// tier's in every region, and its neighbouring tiers' in its own region
// (every neighbouring tier's when its region is not known). It used to
// reach every runner, each remembering it, so that unrelated shards
// filled their notes and dropped notices.
func TestMatchedNoticeGoesOnlyWhereCopiesMayWait(t *testing.T) {
	t.Parallel()
	w := &Worker{cfg: Config{Tiers: events.DefaultTiers}, log: slog.New(slog.NewTextHandler(testLog(), nil)), runners: map[events.Shard]*runner{}}
	for _, s := range (events.Topology{Regions: events.Regions{"eu", "us"}, Tiers: events.DefaultTiers}).Shards() {
		w.runners[s] = &runner{shard: s, copies: newCopies()}
	}
	tiers := make([]string, len(events.DefaultTiers))
	for i, tr := range events.DefaultTiers {
		tiers[i] = tr.Name
	}
	for _, c := range []struct {
		region, tier string
		want         []string
	}{
		{"eu", tiers[0], []string{"eu." + tiers[0], "us." + tiers[0], "eu." + tiers[1]}},
		{"us", tiers[1], []string{"eu." + tiers[1], "us." + tiers[1], "us." + tiers[0], "us." + tiers[2]}},
		{"", tiers[0], []string{"eu." + tiers[0], "us." + tiers[0], "eu." + tiers[1], "us." + tiers[1]}},
	} {
		data, _ := json.Marshal(events.MatchedNotice{SchemaVersion: events.SchemaVersion, TicketID: "t1", MatchID: "m1", HomeRegion: c.region, HomeTier: c.tier})
		w.routeNotice(&nats.Msg{Subject: "cancels.eu.x", Data: data})
		var got []string
		for s, r := range w.runners {
			select {
			case <-r.copies.notices:
				got = append(got, s.String())
			default:
			}
		}
		slices.Sort(got)
		slices.Sort(c.want)
		if !slices.Equal(got, c.want) {
			t.Errorf("home %s.%s: heard by %v, want %v", c.region, c.tier, got, c.want)
		}
	}
}

// pooledLo pools ticket lo (bronze) in runner r of eu.bronze by its
// message, as a worker would.
func pooledLo(t *testing.T, e *env, r *runner) (*pool.Pool, *pool.Entry) {
	t.Helper()
	cons, err := e.js.Consumer(t.Context(), e.subj.TicketsStream(), "tickets-eu-bronze")
	if err != nil {
		t.Fatal(err)
	}
	e.pub(t, e.subj.Ticket("eu", "bronze"), `{"ticket_id":"lo","player_id":"lo","skill":1100}`)
	if m := fetchOne(t, cons); m != nil {
		r.add(t.Context(), m)
	}
	r.settleAdmission(t.Context(), <-r.admitted, false)
	p := r.pools["1v1"]
	lo, ok := p.Get("lo")
	if !ok {
		t.Fatal("lo not pooled")
	}
	return p, lo
}

// TestCopyHandedBackAfterItsNoticeIsChecked: lo's notice (its copy
// matched in M) comes while lo is in a commit of this shard, which loses
// lo's claim to M before M is decided and hands lo back (retry). Back in
// its pool, lo's claim is read and lo dropped. It used to be put back
// unread, left (counted) until a later commit or its expiry met the
// claim: the copies TestTwoShardsDropEachOthersCopies once found left.
func TestCopyHandedBackAfterItsNoticeIsChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRunner(e.boundWorker(t), events.Shard{Region: "eu", Tier: "bronze"})
	ctx := t.Context()
	p, lo := pooledLo(t, e, r)
	const matchID = "m-visitor"
	if lost, err := e.claims(t).ClaimAll(ctx, []string{"lo"}, events.MatchOwner(matchID)); err != nil || len(lost) > 0 {
		t.Fatal(lost, err)
	}
	p.Remove("lo") // into a commit
	r.inflight["lo"] = lo.Seq
	r.committing++
	r.takeMatchedNotice(ctx, events.MatchedNotice{TicketID: "lo", MatchID: matchID})
	r.settleCommit(ctx, commitOutcome{p: p, entries: []*pool.Entry{lo}, retry: []*pool.Entry{lo}}, true)
	if r.copies.underway != 1 {
		t.Fatalf("%d claim reads under way, want lo's", r.copies.underway)
	}
	r.settleCopyCheck(ctx, <-r.copies.checks, true)
	if p.Contains(lo) {
		t.Fatal("lo, matched in M, kept")
	}
}

// TestCopyWhoseClaimReadFailedIsReadAgain: a copy's claim read fails
// (NATS slow or away): it is read again at the next sweep, not kept for
// good as if its claim were another's.
func TestCopyWhoseClaimReadFailedIsReadAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRunner(e.boundWorker(t), events.Shard{Region: "eu", Tier: "bronze"})
	ctx := t.Context()
	p, lo := pooledLo(t, e, r)
	const matchID = "m-visitor"
	if lost, err := e.claims(t).ClaimAll(ctx, []string{"lo"}, events.MatchOwner(matchID)); err != nil || len(lost) > 0 {
		t.Fatal(lost, err)
	}
	r.takeMatchedNotice(ctx, events.MatchedNotice{TicketID: "lo", MatchID: matchID})
	c := <-r.copies.checks
	c.matched, c.err = false, context.DeadlineExceeded // as a read that timed out
	r.settleCopyCheck(ctx, c, true)
	if !p.Contains(lo) {
		t.Fatal("lo dropped on a failed read")
	}
	r.sweep(ctx, ctx, r.now())
	if r.copies.underway != 1 {
		t.Fatalf("%d claim reads under way after the sweep, want lo's again", r.copies.underway)
	}
	r.settleCopyCheck(ctx, <-r.copies.checks, true)
	if p.Contains(lo) {
		t.Fatal("lo, matched in M, kept")
	}
}

// fetchOne pulls one message of a shard consumer, for up to 5 s in pulls
// the consumer takes (events.PoolMaxPullExpiry): nil if none came.
func fetchOne(t *testing.T, cons jetstream.Consumer) jetstream.Msg {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(events.PoolPullExpiry))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			return m
		}
		if err := b.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}
