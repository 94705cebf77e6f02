package matcher

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// matchedTickets is every ticket id in the matches, with its matches. A
// match published again (a recovery, a retry) counts once: the
// allocations stream stores it once (its id is the message id).
func matchedTickets(t *testing.T, ms []events.Match) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range ms {
		for _, tk := range m.Tickets {
			if !slices.Contains(out[tk.TicketID], m.MatchID) {
				out[tk.TicketID] = append(out[tk.TicketID], m.MatchID)
			}
		}
	}
	return out
}

// noPlayerTwiceInAMatch fails the test if a match holds one player twice.
func noPlayerTwiceInAMatch(t *testing.T, ms []events.Match) {
	t.Helper()
	for _, m := range ms {
		seen := map[string]bool{}
		for _, p := range m.Players() {
			if seen[p] {
				t.Errorf("match %s has player %s twice: %+v", m.MatchID, p, m.Tickets)
			}
			seen[p] = true
		}
	}
}

// TestPlayerQueuedInTwoRegionsOnlyNewerIsMatched: one player queues in eu,
// then in us. The us ticket supersedes the eu one (its player hears
// "cancelled", naming the newer ticket), and only the us ticket can be
// matched, though partners wait in both regions.
func TestPlayerQueuedInTwoRegionsOnlyNewerIsMatched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.Result("pat"))
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"pat-eu","player_id":"pat","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "the eu ticket was not pooled")
	e.pub(t, "matchmaking.us.gold", `{"ticket_id":"pat-us","player_id":"pat","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return len(res()) >= 1 }, "the eu ticket was not superseded")
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"eve-eu","player_id":"eve","skill":1800}`)
	e.pub(t, "matchmaking.us.gold", `{"ticket_id":"ulf-us","player_id":"ulf","skill":1800}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) >= 1 }, "the newer ticket was not matched")
	time.Sleep(500 * time.Millisecond) // room for a wrong second match
	ms := matches(t, allocs())
	in := matchedTickets(t, ms)
	if len(ms) != 1 || len(in["pat-us"]) != 1 || len(in["pat-eu"]) != 0 {
		t.Fatalf("want only pat-us matched, got %+v", ms)
	}
	var cancelled []events.Result
	for _, r := range results(t, res())["pat"] {
		if r.TicketID == "pat-eu" {
			cancelled = append(cancelled, r)
		}
	}
	if len(cancelled) != 1 || cancelled[0].Status != events.StatusCancelled || !strings.Contains(cancelled[0].Reason, "pat-us") {
		t.Fatalf("pat-eu results %+v, want one cancelled naming pat-us", cancelled)
	}
	// The eu partner still waits: it did not get the superseded ticket.
	if n := w.waiting(); n != 1 {
		t.Fatalf("%d tickets waiting, want eve's", n)
	}
}

// TestVisitorNeverMeetsItsOwnPlayer: a player's eu ticket reaches us as a
// visitor (its latency budget opens us) where the same player queued
// again. The player is never matched against themself: the us ticket
// supersedes the eu one, whose visitor copy is dropped, and us matches
// the us ticket with another player.
func TestVisitorNeverMeetsItsOwnPlayer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","latency_budget_ms":{"initial":200,"per_second":0,"max":200}}]`)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"vic-eu","player_id":"vic","skill":1800,"latencies_ms":{"us":100}}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 1 }, "the eu ticket was not offered to us")
	e.pub(t, "matchmaking.us.gold", `{"ticket_id":"vic-us","player_id":"vic","skill":1800}`)
	time.Sleep(time.Second)
	e.pub(t, "matchmaking.us.gold", `{"ticket_id":"una-us","player_id":"una","skill":1800}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) >= 1 }, "no match")
	time.Sleep(500 * time.Millisecond)
	ms := matches(t, allocs())
	noPlayerTwiceInAMatch(t, ms)
	if in := matchedTickets(t, ms); len(ms) != 1 || len(in["vic-us"]) != 1 || len(in["una-us"]) != 1 {
		t.Fatalf("want vic-us with una-us, got %+v", ms)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 0
	}, "the superseded ticket or its visitor copy was left behind")
}

// TestSupersedeRacesMatchCommit: each round, a player's eu ticket has a
// partner waiting, and the player's us ticket (with a partner too)
// arrives at the same moment, so the us ticket's supersede races the eu
// match's commit. Whatever wins, every ticket has exactly one outcome, no
// match holds a player twice, and the eu ticket is either matched or
// superseded (cancelled, naming the us ticket), never both; if it was
// superseded it is in no match.
func TestSupersedeRacesMatchCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ws := []*worker{e.startWorker(t, Config{WorkerID: "w0"}), e.startWorker(t, Config{WorkerID: "w1"})}
	// The first worker may lease every shard before the other's first
	// beat is seen, and shards then move to it (as in
	// TestShardsSpreadAndMoveWhenAWorkerDies). A round published while
	// the us shard moves waits for its new owner's consumer, so the older
	// ticket is matched first in every round (a fresh-clone CI run saw 40
	// of 40): the rounds start once the shards have spread over both
	// workers and stayed put for a second.
	var last map[string]string
	var still time.Time
	testkit.Eventually(t, 20*time.Second, func() bool {
		o := e.owners(t)
		if !maps.Equal(o, last) {
			last, still = o, time.Now()
		}
		return len(o) == 12 && ws[0].held() > 0 && ws[1].held() > 0 && ws[0].held()+ws[1].held() == 12 && time.Since(still) >= time.Second
	}, "shards not owned by both workers and settled: %v", e.owners(t))
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	const rounds = 40
	for i := range rounds {
		// The older ticket says so (created_at), whichever the stream
		// stores first.
		before := time.Now().Add(-5 * time.Second).UTC().Format(time.RFC3339Nano)
		var wg sync.WaitGroup
		for _, tk := range []struct{ subject, id, player, extra string }{
			{"matchmaking.eu.gold", "old-%d", "racer%d", `,"created_at":"` + before + `"`},
			{"matchmaking.eu.gold", "ep-%d", "eupartner%d", ""},
			{"matchmaking.us.gold", "new-%d", "racer%d", ""},
			{"matchmaking.us.gold", "up-%d", "uspartner%d", ""},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.pub(t, tk.subject, fmt.Sprintf(`{"ticket_id":%q,"player_id":%q,"skill":1650%s}`, fmt.Sprintf(tk.id, i), fmt.Sprintf(tk.player, i), tk.extra))
			}()
		}
		wg.Wait()
	}
	// Wait until every ticket is matched or ended. Telling is at least
	// once (a retried supersede tells again; the stream keeps one copy, a
	// core subscriber may hear two): the same outcome twice is one.
	outcomes := func() (map[string][]string, map[string][]events.Result) {
		ends := map[string][]events.Result{}
		for _, rs := range results(t, res()) {
			for _, r := range rs {
				if r.Status.Terminal() && !slices.ContainsFunc(ends[r.TicketID], func(o events.Result) bool {
					return o.Status == r.Status && o.Reason == r.Reason && o.MatchID == r.MatchID
				}) {
					ends[r.TicketID] = append(ends[r.TicketID], r)
				}
			}
		}
		return matchedTickets(t, matches(t, allocs())), ends
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		in, ends := outcomes()
		for i := range rounds {
			for _, id := range []string{"old-%d", "new-%d"} {
				id = fmt.Sprintf(id, i)
				if len(in[id]) == 0 && len(ends[id]) == 0 {
					return false
				}
			}
		}
		return true
	}, "some tickets have no outcome")
	time.Sleep(500 * time.Millisecond)
	in, ends := outcomes()
	noPlayerTwiceInAMatch(t, matches(t, allocs()))
	superseded, both := 0, 0
	for id, ms := range in {
		if len(ms) > 1 {
			t.Errorf("ticket %s in %d matches", id, len(ms))
		}
		if len(ends[id]) > 0 {
			t.Errorf("ticket %s matched and ended: %+v", id, ends[id])
		}
	}
	for i := range rounds {
		old, newer := fmt.Sprintf("old-%d", i), fmt.Sprintf("new-%d", i)
		switch {
		case len(ends[old]) == 1 && ends[old][0].Status == events.StatusCancelled:
			if !strings.Contains(ends[old][0].Reason, newer) {
				t.Errorf("%s: reason %q does not name %s", old, ends[old][0].Reason, newer)
			}
			superseded++
		case len(ends[old]) > 0:
			t.Errorf("%s ended %+v", old, ends[old])
		default:
			both++ // matched before the newer ticket was taken: its match stands
		}
		if len(ends[newer]) > 0 {
			t.Errorf("the newer ticket %s ended %+v", newer, ends[newer])
		}
	}
	t.Logf("%d rounds: the older ticket superseded in %d, matched before the newer was taken in %d", rounds, superseded, both)
	if superseded == 0 {
		t.Error("the newer ticket never superseded the older one")
	}
	// Where the older ticket was matched, its match claimed it (and
	// checked it, after the claims) before the newer ticket became the
	// player's live ticket.
	playersKV, err := e.js.KeyValue(t.Context(), e.subj.PlayersBucket())
	if err != nil {
		t.Fatal(err)
	}
	claims := e.claims(t)
	for i := range rounds {
		old := fmt.Sprintf("old-%d", i)
		live, err := playersKV.Get(t.Context(), fmt.Sprintf("racer%d", i))
		if err != nil || !strings.Contains(string(live.Value()), fmt.Sprintf("new-%d", i)) {
			t.Errorf("racer%d's live ticket: %v %v", i, live, err)
			continue
		}
		for _, m := range in[old] {
			claim, err := claims.Read(t.Context(), old)
			if err != nil || claim.Owner != events.MatchOwner(m) {
				t.Fatalf("claim of %s: %+v, %v; want %s's", old, claim, err, m)
			}
			if !claim.Created.Before(live.Created()) {
				t.Errorf("%s claimed by %s at %s, after the newer ticket was taken at %s (revision %d)", old, m, claim.Created, live.Created(), live.Revision())
			}
		}
	}
}
