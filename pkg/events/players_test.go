package events_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

type playersEnv struct {
	js      jetstream.JetStream
	claims  *events.Claims
	players *events.Players
	mu      sync.Mutex
	told    map[string][]string // superseded ticket -> the newer ticket named
}

func newPlayers(t *testing.T) *playersEnv {
	t.Helper()
	js := provisioned(t, events.Topology{})
	c, err := events.NewClaims(t.Context(), js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := events.NewPlayers(t.Context(), js, events.Subjects{}, c)
	if err != nil {
		t.Fatal(err)
	}
	return &playersEnv{js: js, claims: c, players: p, told: map[string][]string{}}
}

func (e *playersEnv) tell(_ context.Context, old events.LiveTicket, newer string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	// At least once: a retry (or a redelivery of a superseded ticket)
	// tells again, which the result's message id makes one result.
	if !slices.Contains(e.told[old.TicketID], newer) {
		e.told[old.TicketID] = append(e.told[old.TicketID], newer)
	}
	return nil
}

func live(id string, created time.Time, players ...string) events.LiveTicket {
	return events.LiveTicket{TicketID: id, Players: players, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: created}
}

// TestTakeSupersedesTheOlderTicket: a newer ticket ends the player's live
// one wherever it was; an older one (a requeued ticket, a late
// redelivery) never replaces it; a decided ticket never comes back; taking
// the live ticket again changes nothing.
func TestTakeSupersedesTheOlderTicket(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	a := live("a", t0, "pat")
	b := live("b", t0.Add(time.Second), "pat")
	b.Region = "us"
	if got, err := e.players.Take(ctx, a, e.tell); err != nil || !got.Live {
		t.Fatalf("take a: %+v %v", got, err)
	}
	got, err := e.players.Take(ctx, b, e.tell)
	if err != nil || !got.Live || len(got.Superseded) != 1 || got.Superseded[0].TicketID != "a" {
		t.Fatalf("take b: %+v %v", got, err)
	}
	if owner, _ := e.claims.Owner(ctx, "a"); owner != events.OwnerSuperseded {
		t.Fatalf("a's claim: %q", owner)
	}
	// a comes back (a redelivery): it stays superseded.
	if got, err := e.players.Take(ctx, a, e.tell); err != nil || got.Live || got.Owner != events.OwnerSuperseded {
		t.Fatalf("take a again: %+v %v", got, err)
	}
	// An older ticket never arrived before: it is the one superseded.
	older := live("older", t0.Add(-time.Minute), "pat")
	if got, err := e.players.Take(ctx, older, e.tell); err != nil || got.Live || got.Owner != events.OwnerSuperseded {
		t.Fatalf("take older: %+v %v", got, err)
	}
	// b again (requeued with the same id): still live, nobody ended.
	if got, err := e.players.Take(ctx, b, e.tell); err != nil || !got.Live || len(got.Superseded) != 0 {
		t.Fatalf("take b again: %+v %v", got, err)
	}
	if cur, _ := e.players.Live(ctx, "pat"); cur != "b" {
		t.Fatalf("pat's live ticket is %q", cur)
	}
	if fmt.Sprint(e.told) != "map[a:[b] older:[b]]" {
		t.Fatalf("told %v", e.told)
	}
	// A party ticket supersedes each member's ticket.
	party := live("party", t0.Add(2*time.Second), "pat", "quinn")
	if got, err := e.players.Take(ctx, party, e.tell); err != nil || !got.Live || len(got.Superseded) != 1 {
		t.Fatalf("take party: %+v %v", got, err)
	}
	for _, p := range []string{"pat", "quinn"} {
		if cur, _ := e.players.Live(ctx, p); cur != "party" {
			t.Fatalf("%s's live ticket is %q", p, cur)
		}
	}
}

// commit is what a matcher's commit does with a match's claims: claim
// every ticket, then check that each is still its players' live ticket; a
// stale one is superseded and the rest given back. It reports whether the
// match may be published.
func (e *playersEnv) commit(t *testing.T, ctx context.Context, match string, tickets map[string][]string) bool {
	ids := make([]string, 0, len(tickets))
	for id := range tickets {
		ids = append(ids, id)
	}
	owner := events.MatchOwner(match)
	lost, err := e.claims.ClaimAll(ctx, ids, owner)
	if err != nil {
		t.Error(err)
		return false
	}
	if len(lost) > 0 {
		return false
	}
	stale, err := e.players.Stale(ctx, tickets)
	if err != nil {
		t.Error(err)
		return false
	}
	if len(stale) == 0 {
		return true
	}
	for id, live := range stale {
		if ok, err := e.claims.Supersede(ctx, id, owner); err != nil || !ok {
			t.Errorf("supersede %s: %v %v", id, ok, err)
		}
		_ = e.tell(ctx, events.LiveTicket{TicketID: id}, live)
	}
	for _, id := range ids {
		if _, gone := stale[id]; !gone {
			e.claims.Release(ctx, []string{id}, owner)
		}
	}
	return false
}

// TestMatchGivenBackAfterASupersedeLostIsChecked is the interleaving that
// makes the check after claiming necessary: a match holds the old
// ticket's claim when the newer ticket's supersede tries it (so the
// supersede loses and the newer ticket becomes live), then gives the
// claim back (a partner was lost). The next match that claims the old
// ticket must find it stale and supersede it, not publish it.
func TestMatchGivenBackAfterASupersedeLostIsChecked(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	if got, err := e.players.Take(ctx, live("old", t0, "pat"), e.tell); err != nil || !got.Live {
		t.Fatal(got, err)
	}
	if won, _, _ := e.claims.Claim(ctx, "old", events.MatchOwner("m0")); !won {
		t.Fatal("m0 claim")
	}
	got, err := e.players.Take(ctx, live("new", t0.Add(time.Second), "pat"), e.tell)
	if err != nil || !got.Live || len(got.Superseded) != 0 {
		t.Fatalf("take new while old is claimed: %+v %v", got, err)
	}
	e.claims.Release(ctx, []string{"old"}, events.MatchOwner("m0")) // m0 lost a partner
	if e.commit(t, ctx, "m1", map[string][]string{"old": {"pat"}, "partner": {"zed"}}) {
		t.Fatal("a match published the old ticket after the newer one became live")
	}
	if owner, _ := e.claims.Owner(ctx, "old"); owner != events.OwnerSuperseded {
		t.Fatalf("old's claim: %q", owner)
	}
	if owner, _ := e.claims.Owner(ctx, "partner"); owner != "" {
		t.Fatalf("the partner's claim was kept: %q", owner)
	}
	if fmt.Sprint(e.told) != "map[old:[new]]" {
		t.Fatalf("told %v", e.told)
	}
	if !e.commit(t, ctx, "m2", map[string][]string{"new": {"pat"}, "partner": {"zed"}}) {
		t.Fatal("the live ticket could not be matched")
	}
}

// TestTakeRacesCommit: the supersede of a player's ticket races a match
// commit (claims, then the live check) over and over; in some rounds an
// earlier match first claims the ticket and gives it back (it lost a
// partner), the case where a supersede loses to a claim that does not
// stay. Each round exactly one wins: the ticket is superseded (its players
// told, the partner free) or in the published match, and then the newer
// ticket's supersede found it claimed. Never both, never neither, and no
// later match can have it.
func TestTakeRacesCommit(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	const rounds = 200
	superseded, matched := 0, 0
	for i := range rounds {
		player, old, newer, partner := fmt.Sprintf("p%d", i), fmt.Sprintf("old%d", i), fmt.Sprintf("new%d", i), fmt.Sprintf("partner%d", i)
		busy := "busy" + partner
		t0 := time.Now()
		if got, err := e.players.Take(ctx, live(old, t0, player), e.tell); err != nil || !got.Live {
			t.Fatalf("take %s: %+v %v", old, got, err)
		}
		if won, _, _ := e.claims.Claim(ctx, busy, events.OwnerCancelled); !won {
			t.Fatal("busy partner")
		}
		var (
			wg        sync.WaitGroup
			published bool
			taken     events.Taken
			terr      error
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			// Take makes a round trip or two before its claim: start the
			// commit at different moments so both orders happen.
			time.Sleep(time.Duration(i%5) * 300 * time.Microsecond)
			if i%2 == 0 {
				e.commit(t, ctx, "m0"+old, map[string][]string{old: {player}, busy: {"b" + player}})
			}
			published = e.commit(t, ctx, "m"+old, map[string][]string{old: {player}, partner: {"q" + player}})
		}()
		go func() {
			defer wg.Done()
			taken, terr = e.players.Take(ctx, live(newer, t0.Add(time.Millisecond), player), e.tell)
		}()
		wg.Wait()
		if terr != nil {
			t.Fatal(terr)
		}
		if !taken.Live {
			t.Fatalf("round %d: the newer ticket is not live: %+v", i, taken)
		}
		owner, _ := e.claims.Owner(ctx, old)
		partnerOwner, _ := e.claims.Owner(ctx, partner)
		match := events.MatchOwner("m" + old)
		e.mu.Lock()
		told := strings.Join(e.told[old], ",")
		e.mu.Unlock()
		switch {
		case owner == events.OwnerSuperseded && !published:
			superseded++
			if partnerOwner != "" || told != newer {
				t.Errorf("round %d: superseded, but the partner is held by %q; told %q", i, partnerOwner, told)
			}
		case owner == match && published:
			matched++
			if partnerOwner != match || len(taken.Superseded) != 0 || told != "" {
				t.Errorf("round %d: matched, but partner %q, superseded %+v, told %q", i, partnerOwner, taken.Superseded, told)
			}
		default:
			t.Errorf("round %d: %s is held by %q, published %v", i, old, owner, published)
		}
		if cur, _ := e.players.Live(ctx, player); cur != newer {
			t.Errorf("round %d: %s's live ticket is %q", i, player, cur)
		}
		if e.commit(t, ctx, "late"+old, map[string][]string{old: {player}}) {
			t.Errorf("round %d: a later match published %s", i, old)
		}
	}
	t.Logf("%d rounds: superseded %d, matched first %d", rounds, superseded, matched)
	if superseded == 0 || matched == 0 {
		t.Error("one side of the race never won: the test proved nothing")
	}
}

// TestTakeTellsASupersededTicketWhenItComesBack: a commit moved a's claim
// to superseded (dropStale) and its matcher died before telling a's
// players. a's message comes back while b, the player's live ticket, has
// the same created_at: Take must tell a's players then (at least once).
func TestTakeTellsASupersededTicketWhenItComesBack(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	if got, err := e.players.Take(ctx, live("b", t0, "pat"), e.tell); err != nil || !got.Live {
		t.Fatalf("take b: %+v %v", got, err)
	}
	if won, _, err := e.claims.Claim(ctx, "a", events.OwnerSuperseded); !won || err != nil {
		t.Fatalf("claim a: %v %v", won, err)
	}
	if got, err := e.players.Take(ctx, live("a", t0, "pat"), e.tell); err != nil || got.Live || got.Owner != events.OwnerSuperseded {
		t.Fatalf("take a: %+v %v", got, err)
	}
	if fmt.Sprint(e.told) != "map[a:[b]]" {
		t.Fatalf("told %v, want a's players told once of b", e.told)
	}
}

// TestTakeRefusesATicketIDOfOtherPlayers: a ticket id is bound to the
// players of the first ticket taken with it. Another ticket with that id
// and other players (a publisher reusing a victim's id) is refused with
// ErrTicketIDTaken: it never becomes live, so a later ticket of its
// players cannot supersede the victim's ticket.
func TestTakeRefusesATicketIDOfOtherPlayers(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	t0 := time.Now()
	if got, err := e.players.Take(ctx, live("x", t0, "vic"), e.tell); err != nil || !got.Live {
		t.Fatalf("take x: %+v %v", got, err)
	}
	if got, err := e.players.Take(ctx, live("x", t0, "att"), e.tell); !errors.Is(err, events.ErrTicketIDTaken) || got.Live {
		t.Fatalf("take x for att: %+v %v, want ErrTicketIDTaken", got, err)
	}
	if got, err := e.players.Take(ctx, live("y", t0.Add(time.Second), "att"), e.tell); err != nil || !got.Live || len(got.Superseded) != 0 {
		t.Fatalf("take y: %+v %v", got, err)
	}
	if owner, _ := e.claims.Owner(ctx, "x"); owner != "" || len(e.told) != 0 {
		t.Fatalf("x's claim %q, told %v: the victim's ticket was ended", owner, e.told)
	}
	// The same players in another order are the same ticket.
	if got, err := e.players.Take(ctx, live("p", t0, "m", "n"), e.tell); err != nil || !got.Live {
		t.Fatalf("take p: %+v %v", got, err)
	}
	if got, err := e.players.Take(ctx, live("p", t0, "n", "m"), e.tell); err != nil || !got.Live {
		t.Fatalf("take p again: %+v %v", got, err)
	}
}
