package main

import (
	"strings"
	"testing"

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
