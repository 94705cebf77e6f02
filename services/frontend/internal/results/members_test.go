package results

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// trackParty tracks the party ticket id of players as Create does and
// waits on it as each of them.
func (st *stack) trackParty(t *testing.T, id string, created time.Time, players ...string) map[string]Waiting {
	t.Helper()
	tk := events.Ticket{TicketID: id, Party: players, Mode: "2v2", CreatedAt: created}
	if err := st.tr.Track(t.Context(), &tk, &Creation{Mode: tk.Mode, Players: tk.Players()}); err != nil {
		t.Fatal(err)
	}
	ws := map[string]Waiting{}
	for _, p := range players {
		w, err := st.tr.Wait(t.Context(), id, p)
		if err != nil {
			t.Fatalf("wait as %s: %v", p, err)
		}
		t.Cleanup(w.Stop)
		ws[p] = w
	}
	return ws
}

// silent fails if w gets anything (a result, or its end) within a moment.
func silent(t *testing.T, w Waiting, what string) {
	t.Helper()
	select {
	case r, ok := <-w.Results:
		t.Fatalf("%s: got %+v (open %v), want nothing yet", what, r, ok)
	case <-time.After(200 * time.Millisecond):
	}
}

// ended fails unless w's channel is closed with nothing more on it.
func ended(t *testing.T, w Waiting, what string) {
	t.Helper()
	select {
	case r, ok := <-w.Results:
		if ok {
			t.Fatalf("%s: got %+v, want the wait ended", what, r)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the wait did not end", what)
	}
}

// newHandStack is newStack with its tracker's clock and ticks turned by
// hand, a wait of 1 s, and each expiry it starts reported on expiries.
func newHandStack(t *testing.T) (st *stack, clk *clock, ticks chan time.Time, expiries chan string) {
	t.Helper()
	ticks, clk, expiries = make(chan time.Time), &clock{now: time.Now()}, make(chan string, 10)
	st = newStack(t, false, func(tr *Tracker) {
		tr.now, tr.ticks = clk.Now, ticks
		tr.waits = func(string) time.Duration { return time.Second }
		tr.expire = func(_ context.Context, id string) Retry { expiries <- id; return RetryNone }
	})
	return st, clk, ticks, expiries
}

// Each player of a party is told on its own subject, with its own join
// token; the tracker followed the first player's alone, so the others'
// waiters got the first player's results. Each waiter now gets its own
// player's; the ticket's first outcome ends its expiries, and the ticket
// is let go once no wait is left on it, or memberStraggle after its
// outcome.
func TestAPartysPlayersAreFollowedEachOnItsOwnSubject(t *testing.T) {
	t.Parallel()
	st, clk, ticks, expiries := newHandStack(t)
	tick := func() { ticks <- clk.Now() }
	ws := st.trackParty(t, "p", clk.Now(), "ann", "ben", "cat")
	if _, err := st.tr.Wait(t.Context(), "p", "dan"); !errors.Is(err, ErrNotTracked) {
		t.Fatalf("a wait as a player not of the ticket: %v, want ErrNotTracked", err)
	}
	st.tell(t, "p", "ben", events.StatusMatched)
	if r := await(t, ws["ben"], "ben's matched"); r.PlayerID != "ben" || r.Status != events.StatusMatched {
		t.Fatalf("ben's waiter got %+v", r)
	}
	silent(t, ws["ann"], "ann's waiter after ben's result")
	// Ann's (the first player's) outcome: her wait ends, the others' not.
	st.tell(t, "p", "ann", events.StatusAssigned)
	if r := await(t, ws["ann"], "ann's assigned"); r.PlayerID != "ann" || r.Status != events.StatusAssigned {
		t.Fatalf("ann's waiter got %+v", r)
	}
	ended(t, ws["ann"], "ann's wait after her outcome")
	silent(t, ws["ben"], "ben's waiter after ann's outcome")
	again, err := st.tr.Wait(t.Context(), "p", "ann")
	if err != nil {
		t.Fatalf("a wait as ann after her outcome: %v, want it handed", err)
	}
	if r := await(t, again, "ann's outcome, waited on again"); r.PlayerID != "ann" || r.Status != events.StatusAssigned {
		t.Fatalf("ann's second waiter got %+v", r)
	}
	ended(t, again, "ann's second wait")
	// Past the ticket's wait, short of memberStraggle: no expiry of a
	// ticket whose outcome came, and the others still followed.
	clk.add(memberStraggle / 2)
	tick()
	tick()
	select {
	case id := <-expiries:
		t.Fatalf("ticket %s expired with its outcome", id)
	case <-time.After(200 * time.Millisecond):
	}
	st.tell(t, "p", "ben", events.StatusAssigned)
	if r := await(t, ws["ben"], "ben's assigned"); r.PlayerID != "ben" || r.Status != events.StatusAssigned {
		t.Fatalf("ben's waiter got %+v", r)
	}
	ended(t, ws["ben"], "ben's wait after his outcome")
	// Cat's never comes: she is let go memberStraggle after ann's.
	silent(t, ws["cat"], "cat's waiter")
	clk.add(memberStraggle / 2)
	tick()
	ended(t, ws["cat"], "cat's wait, memberStraggle after the ticket's outcome")
	testkit.Eventually(t, 5*time.Second, func() bool {
		_, err := st.tr.Wait(t.Context(), "p", "cat")
		return errors.Is(err, ErrNotTracked)
	}, "the ticket still tracked")
}

// Every player's outcome let go of the ticket at once, and a party
// player's result missed while cut off is read back from its own subject.
func TestAPartyPlayersMissedResultIsReadBack(t *testing.T) {
	t.Parallel()
	ticks := make(chan time.Time)
	st := newStack(t, true, func(tr *Tracker) { tr.ticks = ticks })
	ws := st.trackParty(t, "q", time.Now(), "ann", "ben")
	st.tell(t, "q", "ann", events.StatusAssigned)
	if r := await(t, ws["ann"], "ann's assigned"); r.Status != events.StatusAssigned {
		t.Fatal(r.Status)
	}
	st.link.Cut(testkit.Down)
	st.tell(t, "q", "ben", events.StatusAssigned)
	reconnects := st.nc.Stats().Reconnects
	st.link.Drop()
	st.link.Heal()
	testkit.Eventually(t, 15*time.Second, func() bool { return st.nc.Stats().Reconnects > reconnects && st.nc.IsConnected() }, "not reconnected")
	go tickEvery(t, ticks, 100*time.Millisecond)
	if r := await(t, ws["ben"], "ben's assigned, read back"); r.PlayerID != "ben" || r.Status != events.StatusAssigned {
		t.Fatalf("ben's waiter got %+v", r)
	}
	ended(t, ws["ben"], "ben's wait")
	if _, err := st.tr.Wait(t.Context(), "q", "ben"); !errors.Is(err, ErrNotTracked) {
		t.Fatalf("the ticket still tracked after every player's outcome: %v", err)
	}
}

// A party's ticket followed again after its first player's outcome was
// out (another player's event stream on another frontend, or after the
// ticket was let go here): the first player's outcome is never heard
// again. The ticket was kept for good, expired every wait (review of
// 3b64f04); its other player's outcome now ends it.
func TestAPartyFollowedAfterItsFirstOutcomeIsLetGo(t *testing.T) {
	t.Parallel()
	st, clk, ticks, expiries := newHandStack(t)
	st.tell(t, "r", "ann", events.StatusAssigned) // out before anyone here follows it
	tk := events.Ticket{TicketID: "r", Party: []string{"ann", "ben"}, Mode: "2v2", CreatedAt: clk.Now()}
	if err := st.tr.Track(t.Context(), &tk, nil); err != nil {
		t.Fatal(err)
	}
	w, err := st.tr.Wait(t.Context(), "r", "ben")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	st.tell(t, "r", "ben", events.StatusAssigned)
	if r := await(t, w, "ben's assigned"); r.PlayerID != "ben" {
		t.Fatalf("ben's waiter got %+v", r)
	}
	ended(t, w, "ben's wait")
	testkit.Eventually(t, 5*time.Second, func() bool {
		_, err := st.tr.Wait(t.Context(), "r", "ann")
		return errors.Is(err, ErrNotTracked)
	}, "the ticket still tracked after its outcome, with no wait on it")
	clk.add(time.Minute)
	tick := func() { ticks <- clk.Now() }
	tick()
	tick()
	select {
	case id := <-expiries:
		t.Fatalf("ticket %s expired after its outcome", id)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestAStreamFollowsAPartyTicketWithNoGap: a party player's stream
// tracked the ticket, then waited on it, two calls to Run; another
// player's outcome between them let go of the ticket (its waits over),
// and the wait found it not tracked while the player's own result was
// not stored yet: the stream heard nothing more. Follow is one call.
func TestAStreamFollowsAPartyTicketWithNoGap(t *testing.T) {
	t.Parallel()
	tr := New(nil, events.Subjects{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
		func(string) time.Duration { return time.Hour }, func(context.Context, string) Retry { return RetryNone })
	s := &state{tickets: map[string]*ticket{}, byPlayer: map[string]map[string]*ticket{}}
	tk := events.Ticket{TicketID: "r", Party: []string{"ann", "ben"}, Mode: "2v2", CreatedAt: time.Now()}
	track := request{kind: reqTrack, id: "r", player: "ann", others: []string{"ben"}, mode: tk.Mode, created: tk.CreatedAt}
	annWaits := make(chan events.Result, 4)
	tr.apply(s, track)
	if rep := s.wait("r", "ann", annWaits); rep.err != nil {
		t.Fatal(rep.err)
	}
	assigned := func(p string) events.Result {
		return events.Result{TicketID: "r", PlayerID: p, Status: events.StatusAssigned}
	}
	// Two calls, ann's outcome between: the hazard.
	tr.apply(s, track)
	tr.deliver(s, "ann", assigned("ann"))
	if rep := s.wait("r", "ben", make(chan events.Result, 4)); !errors.Is(rep.err, ErrNotTracked) {
		t.Fatalf("waited after the gap: %v (the hazard Follow closes is gone?)", rep.err)
	}
	// One call: the ticket followed again, and ben hears his own.
	benWaits := make(chan events.Result, 4)
	follow := track
	follow.kind, follow.follower, follow.waiter = reqFollow, "ben", benWaits
	if rep := tr.apply(s, follow); rep.err != nil {
		t.Fatalf("follow: %v", rep.err)
	}
	tr.deliver(s, "ben", assigned("ben"))
	if r := <-benWaits; r.PlayerID != "ben" || r.Status != events.StatusAssigned {
		t.Fatalf("ben heard %+v", r)
	}
}
