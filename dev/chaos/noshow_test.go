package chaos

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/loadrecord"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// A no-show is traced to its player's failed POST under way when it was
// created, not to another of the player's (the load tool reuses players,
// one POST at a time), nor another player's at the same moment.
func TestANoShowIsTracedToItsPlayersFailedPost(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 7, 7, 41, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	failed := []FailedPost{
		{PlayerID: "p1", Frontend: "http://f1", SentAt: at(0), EndedAt: at(100), Failed: "post_503"},
		{PlayerID: "p2", Frontend: "http://f2", SentAt: at(900), EndedAt: at(9000), Failed: "post_error"},
		{PlayerID: "p1", Frontend: "http://f2", SentAt: at(1000), EndedAt: at(8000), Failed: "post_error"},
	}
	tests := []struct {
		name     string
		player   string
		created  time.Time
		frontend string
		failed   string
	}{
		{"answered nothing", "p1", at(1200), "http://f2", "post_error"},
		{"answered an error", "p1", at(50), "http://f1", "post_503"},
		{"stamped a moment before the POST's clock", "p1", at(990), "http://f2", "post_error"},
		{"between its player's POSTs", "p1", at(500), "", ""},
		{"no failed POST of its player", "p3", at(1200), "", ""},
	}
	for _, tt := range tests {
		got := traceNoShow("t", tt.player, tt.created, failed)
		if got.Frontend != tt.frontend || got.Failed != tt.failed || !got.CreatedAt.Equal(tt.created) {
			t.Errorf("%s: traced to %+v, want frontend %q failed %q", tt.name, got, tt.frontend, tt.failed)
		}
	}
}

// The record holds both kinds of line; each is read as its own.
func TestReadRecordTellsAckedFromFailedPosts(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "acked.jsonl")
	now := time.Now().UTC()
	var lines []byte
	for _, v := range []any{
		Acked{TicketID: "t1", PlayerID: "p1", Frontend: "http://f1", AcceptedAt: now},
		FailedPost{PlayerID: "p2", Frontend: "http://f2", SentAt: now, EndedAt: now, Failed: "post_error"},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	if err := os.WriteFile(path, lines, 0o600); err != nil {
		t.Fatal(err)
	}
	acked, failed, err := loadrecord.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(acked) != 1 || acked[0].TicketID != "t1" || len(failed) != 1 || failed[0].PlayerID != "p2" || failed[0].Failed != "post_error" {
		t.Fatalf("read %+v and %+v, want t1 acked and p2's POST failed", acked, failed)
	}
}

// A no-show's creation is read from its match: its record, or, with none
// (a matcher writes none by default), the ticket's claim, which carries
// the match. A claim of another match than the result's tells nothing.
func TestANoShowsCreationIsReadFromItsMatch(t *testing.T) {
	t.Parallel()
	js, claims := provisioned(t)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	claimMatch(t, claims, newMatch("m1", t0, "t1", "t2"))
	putRecord(t, js, newMatch("m2", t0, "t3"))
	claimMatch(t, claims, newMatch("m3", t0, "t4"))
	var failed []FailedPost
	for _, p := range []string{"p-t1", "p-t3", "p-t4"} {
		failed = append(failed, FailedPost{PlayerID: p, Frontend: "http://f1", SentAt: t0.Add(-time.Second), EndedAt: t0.Add(time.Second), Failed: "post_error"})
	}
	noShows := []events.Result{assigned("t1", "p-t1", "m1", "s"), assigned("t3", "p-t3", "m2", "s"), assigned("t4", "p-t4", "m9", "s")}
	got := traceNoShows(t.Context(), js, noShows, failed, map[string]string{"http://f1": "frontend-1"})
	for i, want := range []NoShowPost{
		{Ticket: "t1", Frontend: "frontend-1", Failed: "post_error"},
		{Ticket: "t3", Frontend: "frontend-1", Failed: "post_error"},
		{Ticket: "t4", Failed: "no_record"},
	} {
		if got[i].Ticket != want.Ticket || got[i].Frontend != want.Frontend || got[i].Failed != want.Failed {
			t.Errorf("%s traced to %+v, want %+v", want.Ticket, got[i], want)
		}
	}
}

// provisioned is JetStream on an embedded server with the deployment's
// streams and buckets, and its claims bucket.
func provisioned(t *testing.T) (jetstream.JetStream, *events.Claims) {
	t.Helper()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	claims, err := events.NewClaims(t.Context(), js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	return js, claims
}

// newMatch is a 1v1 match formed a second after its tickets (of players
// "p-<ticket id>") were created at created.
func newMatch(id string, created time.Time, tickets ...string) events.Match {
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: id, Mode: "1v1", Region: "eu", Tier: "gold", CreatedAt: created.Add(time.Second)}
	for i, tk := range tickets {
		m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: tk, Players: []string{"p-" + tk}, Team: i, CreatedAt: created})
	}
	return m
}

// claimMatch claims m's tickets for m, each claim carrying m, as a
// matcher's commit does when it writes no record.
func claimMatch(t *testing.T, claims *events.Claims, m events.Match) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, mt := range m.Tickets {
		ids = append(ids, mt.TicketID)
	}
	got := claims.ClaimBatch(t.Context(), []events.ClaimGroup{{IDs: ids, Owner: events.MatchOwner(m.MatchID), Match: b}})
	if got[0].Err != nil || len(got[0].Lost) > 0 {
		t.Fatalf("claim %s: %+v", m.MatchID, got[0])
	}
}

// putRecord stores m's record in the matches bucket, and no claim.
func putRecord(t *testing.T, js jetstream.JetStream, m events.Match) {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), events.Subjects{}.MatchesBucket())
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
