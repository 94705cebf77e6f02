package matcher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestSupersedeThatFailedToTellStillEndsTheOldTicket is the chaos run's
// lost ticket (TestChaosShort: "ticket X has no outcome"). Player pat's
// ticket pat-eu waits, live. A newer ticket's Take (a frontend's, for
// pat-us) claims pat-eu superseded, then cannot tell pat (NATS away, the
// request's context ends): Take returns the error before it writes pat-us
// as live, and pat-us itself never gets taken (its POST failed; its
// message, if it comes late, expires at the next sweep). So pat-eu's
// claim is superseded, nobody told pat, and pat-eu is still the live
// ticket in the players bucket. A partner comes: the match loses pat-eu's
// claim and hands it back "to be told" (resolveLost), but Take finds
// pat-eu live already and pools it again without reading its claim; at
// its max wait the expiry loses the claim to "superseded" and acks it
// silently (ender.end). pat must still hear one terminal outcome for
// pat-eu.
func TestSupersedeThatFailedToTellStillEndsTheOldTicket(t *testing.T) {
	t.Parallel()
	t.Run("matched", func(t *testing.T) { t.Parallel(); supersedeUntold(t, true) })
	t.Run("expired", func(t *testing.T) { t.Parallel(); supersedeUntold(t, false) })
}

// supersedeUntold is the test, with a partner for pat-eu (its match meets
// the claim) or without (its expiry does).
func supersedeUntold(t *testing.T, partner bool) {
	e := newEnv(t)
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2s"}]`)})
	res := testkit.Collect(t, e.nc, e.subj.Result("pat"))
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"pat-eu","player_id":"pat","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "pat-eu was not pooled")

	players, err := events.NewPlayers(t.Context(), e.js, e.subj, e.claims(t))
	if err != nil {
		t.Fatal(err)
	}
	newer := events.LiveTicket{TicketID: "pat-us", Players: []string{"pat"}, Region: "us", Tier: "gold", Mode: "1v1", CreatedAt: time.Now().UTC()}
	_, err = players.Take(t.Context(), newer, func(_ context.Context, old events.LiveTicket, _ string) error {
		return errors.New("publish results.pat: context canceled")
	})
	if err == nil {
		t.Fatal("Take of pat-us: want the tell's error")
	}
	if owner, _ := e.claims(t).Owner(t.Context(), "pat-eu"); owner != events.OwnerSuperseded {
		t.Fatalf("pat-eu's claim is %q, want superseded", owner)
	}

	// A partner: the match around pat-eu loses its claim.
	if partner {
		e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"eve-eu","player_id":"eve","skill":1800}`)
	}

	terminal := func() []events.Result {
		var out []events.Result
		for _, r := range results(t, res())["pat"] {
			if r.TicketID == "pat-eu" && r.Status != events.StatusQueued && r.Status != events.StatusMatched {
				out = append(out, r)
			}
		}
		return out
	}
	// Max wait 2s: by 6s it was expired (and acked) long ago.
	testkit.Eventually(t, 6*time.Second, func() bool { return len(terminal()) > 0 }, "pat-eu has no outcome: superseded, never told, acked")
	if rs := terminal(); rs[0].Status != events.StatusCancelled {
		t.Fatalf("pat-eu ended %+v, want cancelled (superseded)", rs)
	}
}
