package results

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// expiries records a tracker's expiries of each ticket; those of the
// ticket "held" wait until release is closed, as an expiry under a
// partition waits on NATS.
type expiries struct {
	release chan struct{}
	mu      sync.Mutex
	calls   map[string]int
	// unbounded counts expiries handed a context without a deadline.
	unbounded int
}

func (x *expiries) expire(ctx context.Context, ticketID string) Retry {
	x.mu.Lock()
	x.calls[ticketID]++
	if _, ok := ctx.Deadline(); !ok {
		x.unbounded++
	}
	x.mu.Unlock()
	if ticketID == "held" {
		select {
		case <-x.release:
		case <-ctx.Done():
		}
	}
	return RetryNone
}

func (x *expiries) count(ticketID string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.calls[ticketID]
}

// TestExpiryInFlightIsNotFiredAgain is the pile-up of issue #19's
// review: the tracker fired a ticket's expiry again every wait while the
// one before still waited on NATS (cut off, an expiry retried until its
// result was stored), with no deadline: a goroutine more per waiting
// ticket per wait, all hitting NATS at the heal. A ticket has at most one
// expiry in flight, bounded, and the next one comes after it returned.
func TestExpiryInFlightIsNotFiredAgain(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	x := &expiries{release: make(chan struct{}), calls: map[string]int{}}
	waits := func(string) time.Duration { return time.Millisecond }
	tr := New(nc, events.Subjects{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), waits, x.expire)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = tr.Run(ctx) }()
	old := time.Now().Add(-time.Hour)
	for _, tk := range []events.Ticket{{TicketID: "held", PlayerID: "a", CreatedAt: old}, {TicketID: "free", PlayerID: "b", CreatedAt: old}} {
		if err := tr.Track(t.Context(), &tk, nil); err != nil {
			t.Fatal(err)
		}
	}
	// "free" is expired at every tick it is due; by its third expiry
	// "held" was due at two ticks more.
	testkit.Eventually(t, 20*time.Second, func() bool { return x.count("free") >= 3 }, "free not expired again and again")
	if n := x.count("held"); n != 1 {
		t.Fatalf("%d expiries of held in flight at once, want 1", n)
	}
	close(x.release)
	testkit.Eventually(t, 20*time.Second, func() bool { return x.count("held") >= 2 }, "held not expired again once its expiry returned")
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.unbounded != 0 {
		t.Fatalf("%d expiries without a deadline", x.unbounded)
	}
}

// clock is a tracker's clock turned by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// handTurned runs a tracker on nc, every mode's wait wait, with its
// clock and ticks turned by hand: tick hands it one tick at clk's time.
func handTurned(t *testing.T, nc *nats.Conn, wait time.Duration, expire Expirer) (tr *Tracker, clk *clock, tick func()) {
	t.Helper()
	tr = New(nc, events.Subjects{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), func(string) time.Duration { return wait }, expire)
	clk = &clock{now: time.Unix(1_800_000_000, 0)}
	ticks := make(chan time.Time)
	tr.now, tr.ticks = clk.Now, ticks
	testkit.Run(t, tr.Run)
	return tr, clk, func() { ticks <- clk.Now() }
}

// TestExpiryCutOffIsRetriedSoon is the chaos run's backstop gap: an
// expiry that NATS did not answer (a claim create that timed out, a read
// that got "JetStream system temporarily unavailable") was tried again
// only a full wait later (30 s and its jitter), so a ticket no matcher
// held was not told within max wait + 60 s. One cut off is tried again
// after a short backoff; one that ended (told, or lost to an outcome)
// keeps the full wait before the next.
func TestExpiryCutOffIsRetriedSoon(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	var (
		mu    sync.Mutex
		calls = map[string]int{}
	)
	expire := func(_ context.Context, id string) Retry {
		mu.Lock()
		calls[id]++
		first := calls[id] == 1
		mu.Unlock()
		if first && id == "cut" {
			return RetrySoon
		}
		return RetryNone
	}
	count := func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[id]
	}
	const wait = 30 * time.Second
	tr, clk, tick := handTurned(t, nc, wait, expire)
	created := clk.Now().Add(-wait)
	for _, tk := range []events.Ticket{{TicketID: "cut", PlayerID: "a", CreatedAt: created}, {TicketID: "ended", PlayerID: "b", CreatedAt: created}} {
		if err := tr.Track(t.Context(), &tk, nil); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { tick(); return count("cut") == 1 && count("ended") == 1 }, "due tickets not expired")
	// A few seconds on: past the first backoff, far short of a wait. The
	// ticks go on until the cut expiry's return reached the tracker.
	clk.add(3 * time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { tick(); return count("cut") >= 2 }, "cut off expiry not tried again 3 s later")
	for range 20 {
		tick()
	}
	if n := count("ended"); n != 1 {
		t.Fatalf("expiry that ended tried %d times within 3 s, want once a wait", n)
	}
	// Its second try ended: the next comes a wait later, not a backoff.
	clk.add(10 * time.Second)
	for range 20 {
		tick()
	}
	if n := count("cut"); n != 2 {
		t.Fatalf("cut expiry tried %d times, want 2: its second try ended", n)
	}
	clk.add(wait)
	testkit.Eventually(t, 10*time.Second, func() bool { tick(); return count("cut") == 3 && count("ended") == 2 }, "expiries not tried again a wait later")
}

// TestExpiryBackoffDoublesToItsCap: the retries of a ticket cut off for
// long come every retryMax at most, not every tick, and the backoff
// starts over once an expiry ended.
func TestExpiryBackoffDoublesToItsCap(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	tr := &Tracker{now: clk.Now}
	tk := &ticket{expiring: true}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, retryMax, retryMax} {
		tr.expiryReturned(nil, tk, RetrySoon)
		if d := tk.retryAt.Sub(clk.Now()); tk.backoff != want || d < want || d > want+want/4 || tk.expiring {
			t.Fatalf("retry %d: backoff %v, due in %v (expiring %v), want %v give or take a quarter", i, tk.backoff, d, tk.expiring, want)
		}
	}
	tr.expiryReturned(nil, tk, RetryNone)
	tr.expiryReturned(nil, tk, RetrySoon)
	if tk.backoff != retryFirst {
		t.Fatalf("backoff %v after an expiry that ended, want %v", tk.backoff, retryFirst)
	}
}

// An expiry cut off from NATS is tried again after its backoff, not at
// every tick before it: a condition lost to a comment in the middle of a
// line once made every overdue ticket cost a call a second through a
// partition (review of 3b64f04).
func TestExpiryCutOffWaitsOutItsBackoff(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	var calls atomic.Int32
	returned := make(chan struct{}, 100)
	expire := func(context.Context, string) Retry { calls.Add(1); returned <- struct{}{}; return RetrySoon } // always cut off
	const wait = 30 * time.Second
	tr, clk, tick := handTurned(t, nc, wait, expire)
	tk := events.Ticket{TicketID: "cut", PlayerID: "a", CreatedAt: clk.Now().Add(-wait)}
	if err := tr.Track(t.Context(), &tk, nil); err != nil {
		t.Fatal(err)
	}
	tick()
	<-returned
	// The clock stands still: its retry is due retryFirst later at the
	// earliest. Each tick goes after the expiry's return reached Run.
	for range 20 {
		tick()
		time.Sleep(5 * time.Millisecond)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("an expiry cut off from NATS tried %d times before its backoff ran out, want 1", n)
	}
}

// TestACallEndsWhenRunDoesNotServe: a call without a deadline (a
// creation's Track under its request's ctx, an Untrack detached from it)
// ends within callWait when Run does not serve (not started yet: NATS
// stalled at the start; or ended), instead of waiting for good.
func TestACallEndsWhenRunDoesNotServe(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	tr := New(nc, events.Subjects{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
		func(string) time.Duration { return time.Hour }, func(context.Context, string) Retry { return RetryNone })
	done := make(chan error, 1)
	go func() {
		tr.Untrack(context.Background(), "t1")
		done <- tr.Track(context.Background(), &events.Ticket{TicketID: "t2", PlayerID: "p"}, nil)
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Track succeeded with no Run to serve it")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call still waiting for Run after 10 s")
	}
}

// TestAnExpiryWhoseTicketWasUntrackedIsTriedAgain is chaos S80b's lost
// ticket: a keyed ticket, created by its first attempt, was stored and
// tracked by a later attempt past its max wait, and expired at the next
// tick (the claim won) while that creation's publish failed; the
// creation untracked it, the expiry's telling timed out, and its retry
// never came, for the ticket was forgotten. The claim said expired and
// no player was ever told. An untracked ticket whose expiry is in flight,
// or owed a retry (soon, or a wait later), is kept until an expiry of it
// leaves nothing owed; then it is let go. One with none is let go at
// once, and one tracked again is followed as before.
func TestAnExpiryWhoseTicketWasUntrackedIsTriedAgain(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	var (
		mu    sync.Mutex
		calls = map[string]int{}
		owed  = map[string]Retry{"lost": RetrySoon, "again": RetrySoon, "later": RetryLater, "inflight": RetrySoon}
		// The first expiry of "inflight" returns only once released:
		// the Untrack comes while it is in flight (S80b's order).
		inflight = make(chan struct{})
	)
	expire := func(_ context.Context, id string) Retry {
		mu.Lock()
		calls[id]++
		first := calls[id] == 1
		mu.Unlock()
		if id == "inflight" && first {
			<-inflight
		}
		mu.Lock()
		defer mu.Unlock()
		return owed[id]
	}
	count := func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[id]
	}
	const wait = 30 * time.Second
	tr, clk, tick := handTurned(t, nc, wait, expire)
	created := clk.Now().Add(-wait)
	ids := []string{"lost", "again", "later", "inflight", "fresh"}
	for _, id := range ids {
		tk := events.Ticket{TicketID: id, PlayerID: "p-" + id, CreatedAt: created}
		if id == "fresh" {
			tk.CreatedAt = clk.Now() // not due: no expiry in flight or owed
		}
		if err := tr.Track(t.Context(), &tk, &Creation{}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		tick()
		return count("lost") == 1 && count("again") == 1 && count("later") == 1 && count("inflight") == 1
	}, "due tickets not expired")
	// Their creations fail and untrack them, the expiries cut off, or
	// owed a retry a wait later; the repeat of "again" tracks it anew.
	for _, id := range ids {
		tr.Untrack(t.Context(), id)
	}
	close(inflight)
	tk := events.Ticket{TicketID: "again", PlayerID: "p-again", CreatedAt: created}
	if err := tr.Track(t.Context(), &tk, nil); err != nil {
		t.Fatal(err)
	}
	// A stream of the kept ticket reads its stored state (a claim its
	// expiry won): the failed creation vouches for nothing.
	if w, err := tr.Wait(t.Context(), "lost", ""); err != nil {
		t.Fatalf("untracked ticket with its expiry under way not kept: %v", err)
	} else if w.Stop(); w.Creation != nil {
		t.Fatal("a wait on a ticket whose creation failed is handed that creation")
	}
	// The clock moves a second a tick: a retry is due a backoff (or a
	// wait) after the tracker handled the expiry's return, which may come
	// after any tick.
	step := func() { clk.add(time.Second); tick() }
	testkit.Eventually(t, 10*time.Second, func() bool {
		step()
		return count("lost") >= 2 && count("again") >= 2 && count("later") >= 2 && count("inflight") >= 2
	}, "an expiry owed a retry, or in flight, is not tried again once its ticket was untracked")
	// All told now: their next expiries leave nothing owed, and the
	// untracked ones are let go.
	n := map[string]int{}
	mu.Lock() // the counts with the change: an expiry between would go unseen
	for id := range owed {
		owed[id] = RetryNone
	}
	for _, id := range ids {
		n[id] = calls[id]
	}
	mu.Unlock()
	testkit.Eventually(t, 10*time.Second, func() bool {
		step()
		return count("lost") > n["lost"] && count("again") > n["again"] && count("later") > n["later"] && count("inflight") > n["inflight"]
	}, "the expiries owed a retry not tried again")
	for _, id := range []string{"lost", "later", "inflight"} {
		testkit.Eventually(t, 10*time.Second, func() bool {
			tick()
			w, err := tr.Wait(t.Context(), id, "")
			if err == nil {
				w.Stop()
			}
			return err != nil
		}, "untracked ticket "+id+" still followed once its expiry left nothing owed")
	}
	for _, id := range ids {
		n[id] = count(id)
	}
	clk.add(10 * wait)
	for range 20 {
		tick()
	}
	for _, id := range []string{"lost", "later", "inflight"} {
		if got := count(id); got != n[id] {
			t.Fatalf("untracked ticket %s expired %d times after it was let go, want none", id, got-n[id])
		}
	}
	if got := count("fresh"); got != 0 {
		t.Fatalf("untracked ticket with no expiry under way expired %d times, want none", got)
	}
	if w, err := tr.Wait(t.Context(), "again", ""); err != nil {
		t.Fatalf("ticket tracked again after an untrack not followed: %v", err)
	} else if w.Stop(); w.Creation != nil {
		t.Fatal("ticket tracked again after its creation failed still hands that creation to a wait")
	}
}
