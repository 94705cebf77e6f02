package chaos

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

func assigned(ticket, player, match, server string) events.Result {
	return events.Result{TicketID: ticket, PlayerID: player, Status: events.StatusAssigned, MatchID: match,
		Assignment: &events.Assignment{Server: server, Room: match}}
}

func late(ticket, player string, at time.Time) events.Result {
	return events.Result{TicketID: ticket, PlayerID: player, Status: events.StatusExpired, At: at}
}

// The checker finds each kind of violation in a history made to have it,
// and none in a clean one.
func TestCheckerFindsViolations(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	acked := []Acked{{TicketID: "t1", PlayerID: "p1", AcceptedAt: t0}, {TicketID: "t2", PlayerID: "p2", AcceptedAt: t0}}
	clean := []events.Result{
		{TicketID: "t1", PlayerID: "p1", Status: events.StatusMatched, MatchID: "m1"},
		assigned("t1", "p1", "m1", "gs-1"), assigned("t1", "p1", "m1", "gs-1"), // a redelivered copy is one outcome
		{TicketID: "t2", PlayerID: "p2", Status: events.StatusMatched, MatchID: "m0"}, // formed, then requeued
		assigned("t2", "p2", "m1", "gs-1"),
	}
	end := t0.Add(time.Minute)
	if v := Check(acked, clean, nil, end, 30*time.Second); len(v.Violations) != 0 || v.Outcomes["assigned"] != 2 || v.Matches != 1 {
		t.Fatalf("clean history: %+v", v)
	}
	for _, tt := range []struct {
		name    string
		acked   []Acked
		results []events.Result
		want    string
	}{
		{"two outcomes", acked, append(clean[:len(clean):len(clean)], events.Result{TicketID: "t1", PlayerID: "p1", Status: events.StatusExpired}), "t1 (player p1) has 2 terminal states"},
		{"assigned twice differently", acked, append(clean[:len(clean):len(clean)], assigned("t1", "p1", "m1", "gs-2")), "match m1 got 2 game servers"},
		{"stuck", append(acked[:2:2], Acked{TicketID: "t3", PlayerID: "p3", AcceptedAt: t0}), clean, "ticket t3 (player p3) has no outcome"},
		{"one player twice in a match", acked, append(clean[:len(clean):len(clean)],
			events.Result{TicketID: "t8", PlayerID: "p1", Status: events.StatusMatched, MatchID: "m1"}), "match m1 has player p1 twice (tickets [t1 t8])"},
		{"acknowledged twice", append(acked[:2:2], acked[0]), clean, "ticket t1 acknowledged twice"},
		{"late", acked, []events.Result{late("t1", "p1", t0.Add(45*time.Second)), late("t2", "p2", t0.Add(time.Second))}, "ticket t1 (player p1) reached expired only 45s after"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := Check(tt.acked, tt.results, nil, end, 30*time.Second)
			if !strings.Contains(strings.Join(v.Violations, "\n"), tt.want) {
				t.Fatalf("violations %q, want one with %q", v.Violations, tt.want)
			}
		})
	}
	if v := Check(acked, clean, nil, end, 30*time.Second); v.NoShows != 0 {
		t.Fatalf("clean history: %d no-shows", v.NoShows)
	}
	// Not stuck yet: within its deadline a ticket may have no outcome.
	young := append(acked[:2:2], Acked{TicketID: "t3", PlayerID: "p3", AcceptedAt: end.Add(-time.Second)})
	if v := Check(young, clean, nil, end, 30*time.Second); len(v.Violations) != 0 || v.Outcomes["pending"] != 1 {
		t.Fatalf("young ticket: %+v", v)
	}
}

// A player may be in two matches only when the second ticket was queued
// after the first match was formed; a second ticket a frontend acknowledged
// while the first was still waiting must have superseded it.
func TestCheckerOneLiveTicketPerPlayer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := t0.Add(time.Minute)
	formed := map[string]time.Time{"m1": t0.Add(time.Second), "m2": t0.Add(3 * time.Second)}
	results := []events.Result{
		assigned("a1", "p", "m1", "gs-1"), assigned("o1", "q", "m1", "gs-1"),
		assigned("a2", "p", "m2", "gs-1"), assigned("o2", "r", "m2", "gs-1"),
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tt := range []struct {
		name   string
		second *Acked // nil: never acknowledged
		want   string
		races  int
	}{
		{"queued again after the first match", &Acked{TicketID: "a2", PlayerID: "p", AcceptedAt: at(2 * time.Second)}, "", 0},
		{"over HTTP while the first still waited", &Acked{TicketID: "a2", PlayerID: "p", AcceptedAt: at(500 * time.Millisecond)}, "player p is in 2 matches", 0},
		{"over NATS while the first still waited", &Acked{TicketID: "a2", PlayerID: "p", AcceptedAt: at(500 * time.Millisecond), Via: viaNATS}, "", 1},
		{"never acknowledged (its POST failed after it was queued)", nil, "", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			acked := []Acked{{TicketID: "a1", PlayerID: "p", AcceptedAt: t0}, {TicketID: "o1", PlayerID: "q", AcceptedAt: t0},
				{TicketID: "o2", PlayerID: "r", AcceptedAt: at(2 * time.Second)}}
			if tt.second != nil {
				acked = append(acked, *tt.second)
			}
			v := Check(acked, results, formed, end, 30*time.Second)
			got := strings.Join(v.Violations, "\n")
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("violations %q, want %q", v.Violations, tt.want)
			}
			if v.Races != tt.races {
				t.Fatalf("races %d, want %d", v.Races, tt.races)
			}
			// A ticket assigned that no client was told of is a no-show.
			// Its assignment is kept for the trace to its POST.
			if noShow := tt.second == nil; (v.NoShows == 1) != noShow || (noShow && !slices.Equal(v.NoShowTickets, []string{"a2"})) ||
				len(v.noShows) != v.NoShows || noShow && (v.noShows[0].TicketID != "a2" || v.noShows[0].Status != events.StatusAssigned) {
				t.Fatalf("no-shows %d %v (%+v), want a2 only if it was never acknowledged", v.NoShows, v.NoShowTickets, v.noShows)
			}
		})
	}
}
