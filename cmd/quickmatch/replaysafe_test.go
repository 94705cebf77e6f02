package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestReplayRefusesWhatIsNotSafe: a replay is published only for a
// ticket that ended failed by its dead-lettering (or whose id was another
// ticket's), whose players have no live ticket it would supersede, that
// left no trace of an earlier replay (past the duplicate window too), and
// that is young enough for those traces to be kept. Each refusal says why
// and publishes nothing; show's JSON says the same.
func TestReplayRefusesWhatIsNotSafe(t *testing.T) {
	t.Parallel()
	duel := func(id string, players ...string) events.Ticket {
		return events.Ticket{TicketID: id, PlayerID: players[0], Party: players[1:], Mode: "duel", Skill: 1650}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, f *fixture, d *deadLetter)
		age   time.Duration
		want  string // "" : replayed
	}{
		{"failed", nil, 0, ""},
		{"failed, a party", nil, 0, ""},
		{"cancelled meanwhile", func(t *testing.T, f *fixture, d *deadLetter) { f.claim(t, d.TicketID, events.OwnerCancelled) }, 0,
			"ended cancelled (claim cancelled), not failed"},
		{"matched", func(t *testing.T, f *fixture, d *deadLetter) { f.claim(t, d.TicketID, events.MatchOwner("m1")) }, 0,
			"ended matched"},
		{"no claim", func(*testing.T, *fixture, *deadLetter) {}, 0, "has no claim"},
		{"its id another player's", func(t *testing.T, f *fixture, d *deadLetter) {
			other := events.LiveTicket{TicketID: d.TicketID, Players: []string{"someone-else"}, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: time.Now()}
			if _, err := f.players.Take(t.Context(), other, nil); err != nil {
				t.Fatal(err)
			}
		}, 0, ""},
		{"a live ticket of a player", func(t *testing.T, f *fixture, d *deadLetter) {
			f.claim(t, d.TicketID, events.OwnerFailed)
			live := events.LiveTicket{TicketID: "t-now", Players: []string{d.Players[0]}, Region: "us", Tier: "gold", Mode: "1v1", CreatedAt: time.Now()}
			if _, err := f.players.Take(t.Context(), live, nil); err != nil {
				t.Fatal(err)
			}
		}, 0, "has a live ticket, t-now"},
		{"a decided ticket of a player", func(t *testing.T, f *fixture, d *deadLetter) {
			f.claim(t, d.TicketID, events.OwnerFailed)
			old := events.LiveTicket{TicketID: "t-then", Players: []string{d.Players[0]}, Region: "us", Tier: "gold", Mode: "1v1", CreatedAt: time.Now()}
			if _, err := f.players.Take(t.Context(), old, nil); err != nil {
				t.Fatal(err)
			}
			f.claim(t, "t-then", events.OwnerExpired)
		}, 0, ""},
		{"replay claimed", func(t *testing.T, f *fixture, d *deadLetter) {
			f.claim(t, d.TicketID, events.OwnerFailed)
			f.claim(t, replayTicketID(d), events.OwnerCancelled)
		}, 0, "replayed already as ticket"},
		{"replay bound", func(t *testing.T, f *fixture, d *deadLetter) {
			f.claim(t, d.TicketID, events.OwnerFailed)
			lt := events.LiveTicket{TicketID: replayTicketID(d), Players: d.Players, Region: "eu", Tier: "gold", Mode: "duel"}
			if _, err := f.players.Take(t.Context(), lt, nil); err != nil {
				t.Fatal(err)
			}
		}, 0, "replayed already as ticket"},
		{"replay told", func(t *testing.T, f *fixture, d *deadLetter) {
			f.claim(t, d.TicketID, events.OwnerFailed)
			r := events.Result{TicketID: replayTicketID(d), PlayerID: d.Players[0], Status: events.StatusQueued}
			if err := f.pub.Results(t.Context(), []events.Result{r}); err != nil {
				t.Fatal(err)
			}
		}, 0, "replayed already as ticket"},
		{"too old to check", nil, events.RecordTTL, "past what"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			players := []string{"p1"}
			if strings.Contains(tc.name, "party") {
				players = []string{"p1", "p2"}
			}
			d := f.deadLetter(t, duel("t-dead", players...), time.Now().Add(-tc.age))
			if tc.setup == nil {
				f.claim(t, d.TicketID, events.OwnerFailed)
			} else {
				tc.setup(t, f, d)
			}
			tickets := testkitStreamMsgs(t, f)
			out, err := f.s.replay(t.Context(), d)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("replay: %v, want it replayed", err)
			case tc.want == "":
				if out.TicketID != replayTicketID(d) || testkitStreamMsgs(t, f) != tickets+1 {
					t.Fatalf("replayed %+v", out)
				}
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("replay: %+v %v, want a refusal saying %q", out, err, tc.want)
			case testkitStreamMsgs(t, f) != tickets:
				t.Fatal("a refused replay published")
			}
			if tc.want == "" {
				return
			}
			f.out.Reset()
			f.s.json = true
			if err := deadLettersShowCmd(nil)(t.Context(), f.s, []string{strconv.FormatUint(d.Seq, 10)}); err != nil {
				t.Fatal(err)
			}
			var shown map[string]any
			if err := json.Unmarshal([]byte(f.out.String()), &shown); err != nil {
				t.Fatal(err)
			}
			if r, ok := shown["replayable"].(bool); !ok || r {
				t.Errorf("show -json: replayable %v, want false", shown["replayable"])
			}
			if why, _ := shown["why_not"].(string); !strings.Contains(why, tc.want) {
				t.Errorf("show -json: why_not %q, want %q", why, tc.want)
			}
		})
	}
}

// testkitStreamMsgs is how many messages the tickets stream holds.
func testkitStreamMsgs(t *testing.T, f *fixture) uint64 {
	t.Helper()
	st, err := f.js.Stream(t.Context(), f.s.subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
