package main

import (
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestReplayTicketID: a replay's ticket id is never the original's (its
// claim is taken: failed), the same for every replay of one dead letter,
// another for each dead letter, and always a valid id.
func TestReplayTicketID(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 63)
	for _, tc := range []struct {
		name string
		d    deadLetter
		want string // "" : any valid id but the original
	}{
		{"with an id", deadLetter{Seq: 12, TicketID: "t-alice"}, "t-alice-r12"},
		{"without one", deadLetter{Seq: 12, Record: events.DeadLetter{Payload: []byte(`{"player_id":"a"}`)}}, ""},
		{"too long to extend", deadLetter{Seq: 12, TicketID: long}, ""},
		{"an invalid id", deadLetter{Seq: 12, TicketID: "a.b"}, ""},
	} {
		got := replayTicketID(&tc.d)
		if events.CheckID(got) != nil || got == tc.d.TicketID || tc.want != "" && got != tc.want {
			t.Errorf("%s: %q", tc.name, got)
		}
		if again := replayTicketID(&tc.d); again != got {
			t.Errorf("%s: %q then %q", tc.name, got, again)
		}
		other := tc.d
		other.Seq++
		if replayTicketID(&other) == got {
			t.Errorf("%s: another dead letter got the same id %q", tc.name, got)
		}
	}
}

// TestReplayable: only a ticket, whole and a JSON object, is replayed;
// each refusal says why.
func TestReplayable(t *testing.T) {
	t.Parallel()
	s := &session{}
	ticket := []byte(`{"ticket_id":"t1","player_id":"a","mode":"duel","skill":1650}`)
	for _, tc := range []struct {
		name string
		rec  events.DeadLetter
		want string // "" : replayable
	}{
		{"a ticket", events.DeadLetter{Subject: "matchmaking.eu.gold", Payload: ticket}, ""},
		{"a stray's subject", events.DeadLetter{Subject: "matchmaking.mars.gold", Payload: ticket}, ""},
		{"a match", events.DeadLetter{Subject: "allocations.eu", Payload: []byte(`{"match_id":"m1"}`)}, "not a ticket (only tickets are replayed)"},
		{"a wildcard subject", events.DeadLetter{Subject: "matchmaking.*.gold", Payload: ticket}, "not a ticket"},
		{"a backfill request", events.DeadLetter{Subject: "backfills.eu.gold", Payload: []byte(`{}`)}, "not a ticket"},
		{"a cut payload", events.DeadLetter{Subject: "matchmaking.eu.gold", Payload: ticket[:10], PayloadBytes: 70000}, "cut to 10 of 70000 bytes"},
		{"not JSON", events.DeadLetter{Subject: "matchmaking.eu.gold", Payload: []byte("not a ticket")}, "not a JSON object"},
		{"a JSON array", events.DeadLetter{Subject: "matchmaking.eu.gold", Payload: []byte(`[1]`)}, "not a JSON object"},
		{"null", events.DeadLetter{Subject: "matchmaking.eu.gold", Payload: []byte(`null`)}, "not a JSON object"},
	} {
		fields, err := s.replayable(&deadLetter{Record: tc.rec})
		switch {
		case tc.want == "" && (err != nil || fields["player_id"] == nil):
			t.Errorf("%s: %v %v, want replayable", tc.name, fields, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestReplayCarriesTheFlow: a replay sends its ticket with the
// correlation id and traceparent its dead letter kept of the refused
// message (events.DeadLetter.Headers), so a replayed ticket can still be
// followed; a record that kept none (written before records kept them)
// falls back on the dead letter's own message's; show names the
// correlation id.
func TestReplayCarriesTheFlow(t *testing.T) {
	t.Parallel()
	kept := events.Meta{CorrelationID: "c-replayed", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	sent := events.Meta{CorrelationID: "c-sent", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	for _, tc := range []struct {
		name       string
		kept, sent events.Meta
		want       events.Meta
	}{
		{"kept in the record", kept, events.Meta{}, kept},
		{"kept, and another sent", kept, sent, kept},
		{"only sent", events.Meta{}, sent, sent},
		{"neither", events.Meta{}, events.Meta{}, events.Meta{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			d := f.deadLetterOf(t, events.Ticket{TicketID: "t-dead", PlayerID: "p1", Mode: "duel", Skill: 1650}, time.Now(), tc.kept, tc.sent)
			f.claim(t, d.TicketID, events.OwnerFailed)
			if d.CorrelationID != tc.want.CorrelationID {
				t.Errorf("the dead letter shows correlation id %q, want %q", d.CorrelationID, tc.want.CorrelationID)
			}
			out, err := f.s.replay(t.Context(), d)
			if err != nil {
				t.Fatal(err)
			}
			st, err := f.js.Stream(t.Context(), f.s.subj.TicketsStream())
			if err != nil {
				t.Fatal(err)
			}
			raw, err := st.GetMsg(t.Context(), out.StreamSeq)
			if err != nil {
				t.Fatal(err)
			}
			if got := events.MetaFromHeader(raw.Header); got != tc.want {
				t.Fatalf("the replayed ticket carries %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestHasCreatedAt: a replay is dated at its check only when the matcher
// would find no created_at in its payload (any case of the name; null
// and the zero time are none), never over one it would read.
func TestHasCreatedAt(t *testing.T) {
	t.Parallel()
	for payload, want := range map[string]bool{
		`{"created_at":"2026-12-02T14:00:00Z"}`: true,
		`{"Created_At":"2026-12-02T14:00:00Z"}`: true,
		`{"created_at":"yesterday"}`:            true, // refused again by the matcher
		`{"player_id":"p1"}`:                    false,
		`{"created_at":null}`:                   false,
		`{"created_at":"0001-01-01T00:00:00Z"}`: false,
	} {
		if got := hasCreatedAt([]byte(payload)); got != want {
			t.Errorf("%s: %v, want %v", payload, got, want)
		}
	}
}
