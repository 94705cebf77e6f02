package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestANewTicketCreatedAfterTheCheckWinsOverTheReplay: a ticket of one of
// the replay's players created after replayCheck read their live tickets
// (as the frontend creates one: events.Players.Take before its 202) ends
// their live ticket, and the replay ends superseded, in whichever order
// the two reach the players bucket (the new ticket before the replay is
// published, or after the matcher took the replay in), whether the
// replay keeps its original's created_at or has none (it then carries
// the check's time). The new ticket is never told "cancelled"; the
// replay's players are, once.
//
// Before the replay was stamped with the check's time, the cases without
// created_at failed: the matcher dated the replay when the stream stored
// it, after the new ticket, and the replay superseded it.
func TestANewTicketCreatedAfterTheCheckWinsOverTheReplay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		players   []string
		createdAt bool // the dead-lettered ticket had a created_at
		newFirst  bool // the new ticket is taken before the replay is published
	}{
		{"created_at, the new ticket first", []string{"p1"}, true, true},
		{"created_at, the replay first", []string{"p1"}, true, false},
		{"no created_at, the new ticket first", []string{"p1"}, false, true},
		{"no created_at, the replay first", []string{"p1"}, false, false},
		{"a party, no created_at, the new ticket first", []string{"p1", "p2"}, false, true},
		{"a party, no created_at, the replay first", []string{"p1", "p2"}, false, false},
		{"a party, created_at, the replay first", []string{"p1", "p2"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := t.Context()
			tk := events.TicketFor(events.MatchTicket{TicketID: "t-dead", Players: tc.players, Skill: 1650}, "duel")
			if tc.createdAt {
				tk.CreatedAt = time.Now().Add(-time.Minute).UTC()
			}
			d := f.deadLetter(t, tk, time.Now())
			f.claim(t, d.TicketID, events.OwnerFailed)
			checked := time.Now()
			if whyNot, err := f.s.replayCheck(ctx, d, checked); whyNot != nil || err != nil {
				t.Fatalf("check: %v %v, want it to pass", whyNot, err)
			}
			// The new ticket is of the party's last player: the replay
			// is taken for its first player before it meets it.
			player := tc.players[len(tc.players)-1]
			tl := &teller{}
			newer := events.LiveTicket{TicketID: "t-new", Players: []string{player}, Region: "us", Tier: "gold", Mode: "1v1", CreatedAt: after(checked)}
			takeNew := func() events.Taken {
				taken, err := f.players.Take(ctx, newer, tl.tell)
				if err != nil || !taken.Live {
					t.Fatalf("the new ticket's take: %+v %v, want it live", taken, err)
				}
				return taken
			}
			if tc.newFirst {
				takeNew()
			}
			out, err := f.s.publishReplay(ctx, d, checked)
			if err != nil {
				t.Fatal(err)
			}
			replay := matcherTake(t, f, out.StreamSeq, tl)
			if tc.newFirst {
				if replay.Live || replay.Owner != events.OwnerSuperseded {
					t.Errorf("the replay's take after the new ticket: %+v, want it superseded", replay)
				}
			} else {
				if !replay.Live {
					t.Fatalf("the replay's take: %+v, want it live (nothing newer yet)", replay)
				}
				taken := takeNew()
				if !slices.ContainsFunc(taken.Superseded, func(lt events.LiveTicket) bool { return lt.TicketID == out.TicketID }) {
					t.Errorf("the new ticket's take: %+v, want it to supersede the replay %s", taken, out.TicketID)
				}
			}
			if live, err := f.players.Live(ctx, player); err != nil || live != newer.TicketID {
				t.Errorf("%s's live ticket is %q (%v), want the new one", player, live, err)
			}
			for id, want := range map[string]string{newer.TicketID: "", out.TicketID: events.OwnerSuperseded} {
				if owner, err := f.claims.Owner(ctx, id); err != nil || owner != want {
					t.Errorf("ticket %s's claim is %q (%v), want %q", id, owner, err, want)
				}
			}
			if !slices.Equal(tl.told, []string{out.TicketID}) {
				t.Errorf("told cancelled: %v, want the replay %s alone", tl.told, out.TicketID)
			}
		})
	}
}

// TestAReplayOlderThanAMatchedTicketStaysInert: the player made a new
// ticket after the dead-lettered one and it was matched before the check
// (review S5 R1 F1, a regression of the replay guard): the check lets the
// replay through (a decided ticket is not superseded), and the matcher's
// take supersedes the replay, older by its created_at, instead of putting
// it in the pool beside a player who is playing. (A guard test: it passed
// before the replay guard, and failed with it.)
func TestAReplayOlderThanAMatchedTicketStaysInert(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	created := time.Now().Add(-time.Minute).UTC()
	tk := events.TicketFor(events.MatchTicket{TicketID: "t-dead", Players: []string{"p1"}, Skill: 1650, CreatedAt: created}, "duel")
	d := f.deadLetter(t, tk, time.Now())
	f.claim(t, d.TicketID, events.OwnerFailed)
	matched := events.LiveTicket{TicketID: "t-b", Players: []string{"p1"}, Region: "us", Tier: "gold", Mode: "1v1", CreatedAt: created.Add(10 * time.Second)}
	if _, err := f.players.Take(ctx, matched, nil); err != nil {
		t.Fatal(err)
	}
	f.claim(t, matched.TicketID, events.MatchOwner("m1"))
	out, err := f.s.replay(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	tl := &teller{}
	if taken := matcherTake(t, f, out.StreamSeq, tl); taken.Live || taken.Owner != events.OwnerSuperseded {
		t.Errorf("the replay's take: %+v, want it superseded by %s", taken, matched.TicketID)
	}
	if live, err := f.players.Live(ctx, "p1"); err != nil || live != matched.TicketID {
		t.Errorf("p1's live ticket is %q (%v), want the matched one", live, err)
	}
	if owner, err := f.claims.Owner(ctx, matched.TicketID); err != nil || owner != events.MatchOwner("m1") {
		t.Errorf("the matched ticket's claim is %q (%v), want its match's", owner, err)
	}
}

// matcherTake takes in the ticket the tickets stream holds at seq as the
// matcher's intake does: created_at bounded by the time the stream
// stored it (events.Ticket.BoundCreated), then events.Players.Take.
func matcherTake(t *testing.T, f *fixture, seq uint64, tl *teller) events.Taken {
	t.Helper()
	st, err := f.js.Stream(t.Context(), f.s.subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := events.DecodeTicket(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.BoundCreated(raw.Time, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	region, tier, err := f.s.subj.ParseTicket(raw.Subject)
	if err != nil {
		t.Fatal(err)
	}
	lt := events.LiveTicket{TicketID: tk.TicketID, Players: tk.Players(), Region: region, Tier: tier, Mode: tk.Mode, CreatedAt: tk.CreatedAt}
	taken, err := f.players.Take(t.Context(), lt, tl.tell)
	if err != nil {
		t.Fatal(err)
	}
	return taken
}

// teller records the tickets whose players were told "cancelled".
type teller struct{ told []string }

func (tl *teller) tell(_ context.Context, old events.LiveTicket, _ string) error {
	tl.told = append(tl.told, old.TicketID)
	return nil
}

// after is a time after checked: now, unless the clock has not moved
// since (what is under test is a ticket created after the check, not a
// clock that stands still).
func after(checked time.Time) time.Time {
	now := time.Now()
	if !now.After(checked) {
		now = checked.Add(time.Microsecond)
	}
	return now.UTC()
}
