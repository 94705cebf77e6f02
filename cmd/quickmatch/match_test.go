package main

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestMatchIsReadFromItsTicketsClaim: a match without a record (a
// matcher writes none by default) is shown when asked for by one of its
// tickets, from the claim that carries it; asked for by its id, its
// decision is shown with where to find the rest. A ticket claimed by no
// match names none.
func TestMatchIsReadFromItsTicketsClaim(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.claimMatch(t, matchOf("m1", time.Now(), "t1", "t2"))
	decisions, err := events.NewDecisions(t.Context(), f.js, f.s.subj)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decisions.Decide(t.Context(), "m1", events.DecisionPublished); err != nil {
		t.Fatal(err)
	}
	f.claim(t, "t3", events.OwnerCancelled)

	info, err := f.s.lookupMatch(t.Context(), "t2")
	if err != nil {
		t.Fatal(err)
	}
	if info.MatchID != "m1" || info.Match == nil || len(info.Match.Tickets) != 2 || info.From != "claim of ticket t2" ||
		info.Decision != events.DecisionPublished || info.Claims["t1"] != events.MatchOwner("m1") || info.Claims["t2"] != events.MatchOwner("m1") {
		t.Fatalf("match of t2: %+v, want m1 from t2's claim, published, both claims its own", info)
	}
	if err := writeMatch(f.out, info); err != nil {
		t.Fatal(err)
	}
	if out := f.out.String(); !strings.Contains(out, "claim of ticket t2") || !strings.Contains(out, "t1") {
		t.Errorf("match table:\n%s", out)
	}

	f.out.Reset()
	if info, err = f.s.lookupMatch(t.Context(), "m1"); err != nil {
		t.Fatal(err)
	}
	if info.Match != nil || info.Decision != events.DecisionPublished {
		t.Fatalf("m1 by its id: %+v, want no match read, published", info)
	}
	if err := writeMatch(f.out, info); err != nil {
		t.Fatal(err)
	}
	if out := f.out.String(); !strings.Contains(out, "quickmatch ticket <ticket id>") {
		t.Errorf("a match without a record does not say where it is:\n%s", out)
	}

	for _, id := range []string{"t3", "t-nobody"} {
		if _, err := f.s.lookupMatch(t.Context(), id); !errors.Is(err, errUnknownMatch) {
			t.Errorf("match of %s: err = %v, want %v", id, err, errUnknownMatch)
		}
	}
}

// TestTicketShowsTheMatchItsClaimCarries: a matched ticket of which
// nothing else is kept (no frontend record, its players' entries gone)
// shows its match, players, shard and mode from its claim.
func TestTicketShowsTheMatchItsClaimCarries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.claimMatch(t, matchOf("m1", time.Now(), "t1", "t2"))
	info, err := f.s.lookupTicket(t.Context(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Match == nil || info.Match.MatchID != "m1" || !slices.Equal(info.Players, []string{"p-t1"}) || info.Shard != "eu.gold" || info.Mode != "1v1" {
		t.Fatalf("ticket t1: %+v, want m1 from its claim, player p-t1, eu.gold 1v1", info)
	}
	if err := writeTicket(f.out, info); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m1 (1v1, carried by its claim)", "t2 (team 1: p-t2)"} {
		if !strings.Contains(f.out.String(), want) {
			t.Errorf("ticket table lacks %q:\n%s", want, f.out)
		}
	}
}

// TestMatchedWaitsReadsClaimsAndRecords: the matches of the window are
// read from their tickets' claims and from the records kept, each match
// once; a claim of no match is none. -max-matches counts every message
// read, in both buckets.
func TestMatchedWaitsReadsClaimsAndRecords(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := time.Now()
	f.claimMatch(t, matchOf("m1", now, "t1", "t2"))
	f.putRecord(t, matchOf("m2", now, "t3"))
	both := matchOf("m3", now, "t4")
	f.claimMatch(t, both)
	f.putRecord(t, both)
	f.claim(t, "t5", events.OwnerCancelled)
	const stored = 6 // four claims, two records
	for _, tc := range []struct {
		max    int
		capped bool
	}{{stored, false}, {stored - 1, true}} {
		var ids []string
		capped, err := f.s.matchedWaits(t.Context(), now.Add(-time.Minute), tc.max, func(m events.Match) { ids = append(ids, m.MatchID) })
		if err != nil {
			t.Fatal(err)
		}
		if capped != tc.capped {
			t.Errorf("max %d: capped %v, want %v", tc.max, capped, tc.capped)
		}
		if slices.Sort(ids); !tc.capped && !slices.Equal(ids, []string{"m1", "m2", "m3"}) {
			t.Errorf("matches read %v, want m1, m2 and m3 once each", ids)
		}
	}
}

// matchOf is a 1v1 match in eu.gold formed a second after its tickets
// (of players "p-<ticket id>", one team each) were created at created.
func matchOf(id string, created time.Time, tickets ...string) events.Match {
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: id, Mode: "1v1", Region: "eu", Tier: "gold", CreatedAt: created.Add(time.Second).UTC()}
	for i, tk := range tickets {
		m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: tk, Players: []string{"p-" + tk}, Team: i, CreatedAt: created.UTC()})
	}
	return m
}

// claimMatch claims m's tickets for m, each claim carrying m, as a
// matcher's commit does when it writes no record.
func (f *fixture) claimMatch(t *testing.T, m events.Match) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, mt := range m.Tickets {
		ids = append(ids, mt.TicketID)
	}
	got := f.claims.ClaimBatch(t.Context(), []events.ClaimGroup{{IDs: ids, Owner: events.MatchOwner(m.MatchID), Match: b}})
	if got[0].Err != nil || len(got[0].Lost) > 0 {
		t.Fatalf("claim %s: %+v", m.MatchID, got[0])
	}
}

// putRecord stores m's record in the matches bucket.
func (f *fixture) putRecord(t *testing.T, m events.Match) {
	t.Helper()
	kv, err := f.js.KeyValue(t.Context(), f.s.subj.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), m.MatchID, b); err != nil {
		t.Fatal(err)
	}
}
