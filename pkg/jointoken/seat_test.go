package jointoken

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

// signGrant signs a grant written by hand with test key 0, as Sign would
// sign it: a token whose signature is good whatever the grant says.
func signGrant(grant string) string {
	signed := version + "." + KeyID(pub(0)) + "." + enc.EncodeToString([]byte(grant))
	return signed + "." + enc.EncodeToString(ed25519.Sign(testKey(0), []byte(signed)))
}

func TestSeatRoundTrip(t *testing.T) {
	t.Parallel()
	s, keys := signer(t, 0), NewKeys(pub(0))
	for _, seat := range []Seat{
		{},                               // the legacy two-player room
		{Team: 1, Teams: 2, TeamSize: 2}, // 2v2
		{Team: 2, Teams: 3, TeamSize: 1}, // free-for-all of 3
		{Team: 0, Teams: 2, TeamSize: 50},
		{Team: 1, Teams: 2, TeamSize: 2, AcceptsBackfill: true}, // 2v2 that accepts backfill
		{Team: 0, Teams: 3, TeamSize: 1, AcceptsBackfill: true}, // free-for-all that accepts backfill
	} {
		tok, err := s.Sign(Grant{MatchID: "m1", PlayerID: "alice", Expires: now.Add(time.Minute), Seat: seat})
		if err != nil {
			t.Fatalf("%+v: %v", seat, err)
		}
		g, err := keys.Verify(tok, now)
		if err != nil || g.Seat != seat || g.MatchID != "m1" || g.PlayerID != "alice" {
			t.Fatalf("%+v: Verify = %+v, %v", seat, g, err)
		}
		raw, _ := enc.DecodeString(strings.Split(tok, ".")[2])
		want := map[bool]int{true: 3, false: 6}[seat == Seat{}]
		if seat.AcceptsBackfill {
			want = 7
		}
		if fields := strings.Count(string(raw), "|") + 1; fields != want {
			t.Fatalf("%+v written in %d fields: %q", seat, fields, raw)
		}
	}
}

func TestSignRefusesSeatsNoRoomHas(t *testing.T) {
	t.Parallel()
	s := signer(t, 0)
	for _, seat := range []Seat{
		{Team: 2, Teams: 2, TeamSize: 1},  // team out of range
		{Team: -1, Teams: 2, TeamSize: 1}, // team out of range
		{Team: 0, Teams: 1, TeamSize: 2},  // one team is no match
		{Team: 0, Teams: 2, TeamSize: 0},  // empty teams
		{Team: 0, Teams: 2, TeamSize: 51}, // 102 seats
		{Team: 1},                         // a team of no room
		{AcceptsBackfill: true},           // backfill in no room
	} {
		if _, err := s.Sign(Grant{MatchID: "m", PlayerID: "p", Expires: now.Add(time.Minute), Seat: seat}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%+v: %v", seat, err)
		}
	}
}

// TestVerifyRefusesMalformedSeats: a well-signed grant whose seat is not
// one Sign writes is malformed, never read as some other seat.
func TestVerifyRefusesMalformedSeats(t *testing.T) {
	t.Parallel()
	keys := NewKeys(pub(0))
	const head = "m1|alice|1800000060"
	if g, err := keys.Verify(signGrant(head+"|1|2|2"), now); err != nil || g.Seat != (Seat{Team: 1, Teams: 2, TeamSize: 2}) {
		t.Fatalf("a good seat: %+v, %v", g, err)
	}
	for name, grant := range map[string]string{
		"team out of range":      head + "|2|2|2",
		"negative team":          head + "|-1|2|2",
		"one team":               head + "|0|1|2",
		"too many seats":         head + "|0|2|51",
		"seats that overflow":    head + "|0|4611686018427387904|4",
		"plus sign":              head + "|+1|2|2",
		"leading zero":           head + "|01|2|2",
		"leading zero in teams":  head + "|1|02|2",
		"minus zero":             head + "|-0|2|2",
		"space":                  head + "| 1|2|2",
		"not a number":           head + "|a|2|2",
		"4 fields":               head + "|1",
		"5 fields":               head + "|1|2",
		"7 fields":               head + "|1|2|2|2",
		"zero seat as 6 fields":  head + "|0|0|0",
		"empty seat fields":      head + "|||",
		"backfill misspelt":      head + "|1|2|2|Backfill",
		"backfill as a number":   head + "|1|2|2|1",
		"backfill empty":         head + "|1|2|2|",
		"backfill, no seat":      head + "|0|0|0|backfill",
		"8 fields":               head + "|1|2|2|backfill|backfill",
		"plus sign in expiry":    "m1|alice|+1800000060",
		"leading zero in expiry": "m1|alice|01800000060",
	} {
		if g, err := keys.Verify(signGrant(grant), now); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s (%q): %+v, %v", name, grant, g, err)
		}
	}
}

// FuzzSeatedGrant: every grant Verify accepts is the one spelling Sign
// writes for it, so a signed grant cannot mean two things.
func FuzzSeatedGrant(f *testing.F) {
	s, keys := signer(f, 0), NewKeys(pub(0))
	for _, g := range []string{"m|p|2000000000", "m|p|2000000000|1|2|2", "m|p|2000000000|1|2|2|backfill", "m|p|2000000000|1|4|1|starts=3", "m|p|2000000000|1|4|1|backfill|starts=3", "m|p|2000000000|1|4|1|starts=03", "m|p|2000000000|+1|2|2", "m|p|2000000000|0|0|0", "m|p|02000000000"} {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, grant string) {
		tok := signGrant(grant)
		g, err := keys.Verify(tok, now)
		if err != nil {
			return
		}
		again, err := s.Sign(g)
		if err != nil || again != tok {
			t.Fatalf("accepted %q as %+v, which Sign writes as %q (%v)", grant, g, again, err)
		}
	})
}

// TestTokensBeforeBackfill: a token signed before Seat.AcceptsBackfill existed
// (grants of 3 and 6 fields, pinned here as that Sign wrote them) still
// verifies, as a seat that does not accept backfill.
func TestTokensBeforeBackfill(t *testing.T) {
	t.Parallel()
	keys := NewKeys(pub(0))
	for grant, want := range map[string]Seat{
		"m1|alice|1800000060":       {},
		"m1|alice|1800000060|1|2|2": {Team: 1, Teams: 2, TeamSize: 2},
	} {
		g, err := keys.Verify(signGrant(grant), now)
		if err != nil || g.Seat != want || g.Seat.AcceptsBackfill {
			t.Errorf("%q: %+v, %v", grant, g, err)
		}
	}
	g, err := keys.Verify(signGrant("m1|alice|1800000060|1|2|2|backfill"), now)
	if err != nil || g.Seat != (Seat{Team: 1, Teams: 2, TeamSize: 2, AcceptsBackfill: true}) {
		t.Fatalf("a backfill seat: %+v, %v", g, err)
	}
}

// TestSeatStarts: a seat in a room that started early says how many players its
// game starts with, signed as the grant's last field "starts=<n>"; every
// other seat is written as before, so the tokens of full rooms are the
// same bytes they were.
func TestSeatStarts(t *testing.T) {
	t.Parallel()
	s, keys := signer(t, 0), NewKeys(pub(0))
	for seat, grant := range map[Seat]string{
		{Team: 2, Teams: 4, TeamSize: 1, Starts: 3}:                        "m1|alice|1800000060|2|4|1|starts=3",
		{Team: 0, Teams: 4, TeamSize: 1, AcceptsBackfill: true, Starts: 3}: "m1|alice|1800000060|0|4|1|backfill|starts=3",
		{Team: 1, Teams: 3, TeamSize: 2, Starts: 4}:                        "m1|alice|1800000060|1|3|2|starts=4",
		{Team: 0, Teams: 2, TeamSize: 50, Starts: 99}:                      "m1|alice|1800000060|0|2|50|starts=99",
		{Team: 0, Teams: 2, TeamSize: 2, Starts: 2}:                        "m1|alice|1800000060|0|2|2|starts=2",
		{Team: 1, Teams: 2, TeamSize: 2, AcceptsBackfill: true}:            "m1|alice|1800000060|1|2|2|backfill",
	} {
		tok, err := s.Sign(Grant{MatchID: "m1", PlayerID: "alice", Expires: now.Add(time.Minute), Seat: seat})
		if err != nil {
			t.Fatalf("%+v: %v", seat, err)
		}
		if raw, _ := enc.DecodeString(strings.Split(tok, ".")[2]); string(raw) != grant {
			t.Errorf("%+v signed as %q, want %q", seat, raw, grant)
		}
		if g, err := keys.Verify(tok, now); err != nil || g.Seat != seat {
			t.Errorf("%+v: Verify = %+v, %v", seat, g, err)
		}
	}
	for _, seat := range []Seat{
		{Team: 0, Teams: 4, TeamSize: 1, Starts: 4},  // every seat: a full room says 0
		{Team: 0, Teams: 4, TeamSize: 1, Starts: 5},  // more than the seats
		{Team: 0, Teams: 4, TeamSize: 1, Starts: 1},  // a game of one player
		{Team: 0, Teams: 4, TeamSize: 1, Starts: -1}, // negative
		{Starts: 3}, // in no room
	} {
		if _, err := s.Sign(Grant{MatchID: "m", PlayerID: "p", Expires: now.Add(time.Minute), Seat: seat}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%+v signed: %v", seat, err)
		}
	}
}

// TestVerifyRefusesMalformedStarts: a well-signed grant whose starts
// field is not the one spelling Sign writes, or out of range, is
// malformed, never read as some other room.
func TestVerifyRefusesMalformedStarts(t *testing.T) {
	t.Parallel()
	keys := NewKeys(pub(0))
	const head = "m1|alice|1800000060"
	for name, grant := range map[string]string{
		"plus sign":               head + "|0|4|1|starts=+3",
		"leading zero":            head + "|0|4|1|starts=03",
		"minus zero":              head + "|0|4|1|starts=-0",
		"space":                   head + "|0|4|1|starts= 3",
		"empty":                   head + "|0|4|1|starts=",
		"not a number":            head + "|0|4|1|starts=a",
		"zero":                    head + "|0|4|1|starts=0",
		"one":                     head + "|0|4|1|starts=1",
		"every seat":              head + "|0|4|1|starts=4",
		"more than the seats":     head + "|0|4|1|starts=5",
		"negative":                head + "|0|4|1|starts=-3",
		"huge":                    head + "|0|4|1|starts=9223372036854775808",
		"misspelt":                head + "|0|4|1|Starts=3",
		"no key":                  head + "|0|4|1|=3",
		"a bare number":           head + "|0|4|1|3",
		"before backfill":         head + "|0|4|1|starts=3|backfill",
		"twice":                   head + "|0|4|1|starts=3|starts=3",
		"after backfill twice":    head + "|0|4|1|backfill|backfill|starts=3",
		"something after":         head + "|0|4|1|backfill|starts=3|x",
		"no seat":                 head + "|starts=3",
		"zero seat":               head + "|0|0|0|starts=3",
		"empty field after":       head + "|0|4|1|starts=3|",
		"backfill misspelt first": head + "|0|4|1|Backfill|starts=3",
	} {
		if g, err := keys.Verify(signGrant(grant), now); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s (%q): %+v, %v", name, grant, g, err)
		}
	}
}
