package matcher

import (
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestClaimNobodyToldIsToldByTheMatcher is issue #19's lost ticket: under
// a partition, a frontend's expiry claimed pat-eu (expired), its result
// publish timed out, nothing retried it (or the frontend died between the
// claim and the publish), and every matcher that met the ticket lost the
// claim and dropped it silently as decided elsewhere. pat heard nothing.
// The matcher that meets such a claim, at a match (the commit loses the
// claim) or at the ticket's own expiry, tells pat what the claim says.
func TestClaimNobodyToldIsToldByTheMatcher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		owner   string
		partner bool
		want    events.Status
	}{
		{"expired, met by its expiry", events.OwnerExpired, false, events.StatusExpired},
		{"expired, met by a match", events.OwnerExpired, true, events.StatusExpired},
		{"cancelled, met by its expiry", events.OwnerCancelled, false, events.StatusCancelled},
		{"cancelled, met by a match", events.OwnerCancelled, true, events.StatusCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			// Met by a match, pat-eu must not be met by its expiry first:
			// its mode waits an hour then.
			maxWait := "2s"
			if tt.partner {
				maxWait = "1h"
			}
			w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"`+maxWait+`"}]`)})
			res := testkit.Collect(t, e.nc, e.subj.Result("pat"))
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"pat-eu","player_id":"pat","skill":1800}`)
			testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "pat-eu was not pooled")

			// The claimer, then nothing: no result, no cancel notice.
			if won, _, err := e.claims(t).Claim(t.Context(), "pat-eu", tt.owner); err != nil || !won {
				t.Fatalf("claim pat-eu: %v %v", won, err)
			}
			if tt.partner {
				e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"eve-eu","player_id":"eve","skill":1800}`)
			}
			terminal := func() []events.Result {
				var out []events.Result
				for _, r := range results(t, res())["pat"] {
					if r.TicketID == "pat-eu" && r.Status.Terminal() {
						out = append(out, r)
					}
				}
				return out
			}
			// Met at once by a match, or at 2s by its expiry: by 6s it was
			// met and acked long ago.
			testkit.Eventually(t, 6*time.Second, func() bool { return len(terminal()) > 0 }, "pat-eu has no outcome: claimed %s, never told, dropped", tt.owner)
			if rs := terminal(); rs[0].Status != tt.want {
				t.Fatalf("pat-eu ended %+v, want %s", rs, tt.want)
			}
			// eve, pat-eu's partner, waits on: the claim ruled pat-eu out.
			pooled := 0
			if tt.partner {
				pooled = 1
			}
			testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == pooled }, "pat-eu still pooled")
		})
	}
}

// TestRefusedTicketWhoseClaimNobodyToldIsTold: a ticket this matcher
// refuses (a mode its rule set does not have) whose claim another holds,
// cancelled here, but whose players were never told (the canceller's
// publish failed): the matcher dead-letters the message and tells the
// players the outcome that won, rather than dropping it as decided
// elsewhere.
func TestRefusedTicketWhoseClaimNobodyToldIsTold(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2s"}]`)})
	res := testkit.Collect(t, e.nc, e.subj.Result("pat"))
	if won, _, err := e.claims(t).Claim(t.Context(), "pat-eu", events.OwnerCancelled); err != nil || !won {
		t.Fatalf("claim pat-eu: %v %v", won, err)
	}
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"pat-eu","player_id":"pat","skill":1800,"mode":"9v9"}`)
	told := func() []events.Result {
		var out []events.Result
		for _, r := range results(t, res())["pat"] {
			if r.TicketID == "pat-eu" && r.Status.Terminal() {
				out = append(out, r)
			}
		}
		return out
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(told()) > 0 }, "pat-eu refused and dropped: its cancelled claim never told")
	if rs := told(); len(rs) != 1 || rs[0].Status != events.StatusCancelled {
		t.Fatalf("pat-eu told %+v, want cancelled once", rs)
	}
}
