package tickets

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

type noTracker struct{}

func (noTracker) Track(context.Context, *events.Ticket, *results.Creation) error { return nil }
func (noTracker) Untrack(context.Context, string)                                {}
func (noTracker) Heard(context.Context, string) *events.Result                   { return nil }
func (noTracker) HeardSuperseding(context.Context, string) bool                  { return false }
func (noTracker) ReadOutcomesWith(results.Outcomes)                              {}

type roomEverywhere struct{}

func (roomEverywhere) Check(string) error { return nil }

// TestCreateStampsTheRuleSetVersion: every ticket the frontend publishes
// carries the version of the rule set it was checked under
// (events.HeaderRules), the one in force when it was created: after a
// reload, the new set's. A matcher still on the old set reads it to wait
// for the new one rather than refuse the ticket (issue #18).
func TestCreateStampsTheRuleSetVersion(t *testing.T) {
	t.Parallel()
	const (
		oneMode  = `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`
		twoModes = `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"},{"name":"duel","teams":2,"team_size":1,"max_wait":"1m"}]}`
	)
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.json")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(oneMode)
	cur, err := rules.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	s, err := New(t.Context(), Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers, Rules: cur}, js, subj, noTracker{}, roomEverywhere{}, log)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(player, mode string) string {
		t.Helper()
		return createQueued(t, s, stream, player, mode, "").Header.Get(events.HeaderRules)
	}
	before := cur.Get().Version()
	if got := stamp("a", "1v1"); got != before {
		t.Fatalf("ticket stamped %q, want the rule set's version %q", got, before)
	}
	write(twoModes)
	if !cur.Reload() {
		t.Fatal("rule set not reloaded")
	}
	after := cur.Get().Version()
	if after == before {
		t.Fatal("two rule sets of one version")
	}
	if got := stamp("b", "duel"); got != after {
		t.Fatalf("ticket of the new mode stamped %q, want the new version %q", got, after)
	}
}

func homeTier(t *testing.T, skill int) string {
	t.Helper()
	tier, ok := events.DefaultTiers.For(skill)
	if !ok {
		t.Fatalf("no tier for %d", skill)
	}
	return tier
}

// TestCreateSealsATicketTakenFirst: a ticket the frontend took first is
// queued sealed (events.HeaderTaken, verifiable with the matchers' keys),
// keyed or not, so that its shard's owner takes it in without a read;
// one queued before it is taken (its player's earlier ticket still
// waiting: the take after may find anything) carries no seal, nor does
// a party's whose take first stopped at its second player, nor one its
// take first ended (review R9), nor any ticket of a frontend without
// keys.
func TestCreateSealsATicketTakenFirst(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	seals, err := events.NewSeals([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), subj.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	sealing, err := New(t.Context(), Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers, Seals: seals}, js, subj, noTracker{}, roomEverywhere{}, log)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := New(t.Context(), Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers}, js, subj, noTracker{}, roomEverywhere{}, log)
	if err != nil {
		t.Fatal(err)
	}
	// sealed creates a ticket for player with s and reports whether its
	// message carries a seal, failing on one that does not verify.
	sealed := func(s *Service, player, key string, party ...string) bool {
		t.Helper()
		mode := "1v1"
		if party != nil {
			mode = "2v2"
		}
		raw := createQueued(t, s, stream, player, mode, key, party...)
		seal := raw.Header.Get(events.HeaderTaken)
		if seal != "" && !seals.Verify(raw.Subject, raw.Data, seal) {
			t.Fatalf("%s's ticket: seal %q does not verify", player, seal)
		}
		return seal != ""
	}
	if !sealed(sealing, "ann", "") {
		t.Error("a new player's ticket, taken first: not sealed")
	}
	if sealed(sealing, "ann", "") {
		t.Error("a ticket queued before its take (ann's first still waiting): sealed")
	}
	if !sealed(sealing, "bob", "k1") {
		t.Error("a keyed ticket taken first: not sealed")
	}
	if sealed(sealing, "bob", "k2") {
		t.Error("a keyed ticket queued before its take: sealed")
	}
	// A party of a new player and one whose ticket waits: the new
	// player's entry is written, then the take first stops at the
	// waiting ticket, and the party's ticket is queued first (R8's L4).
	if sealed(sealing, "dan", "", "dan", "ann") {
		t.Error("a party's ticket queued before its take (ann's ticket waiting): sealed")
	}
	// A ticket its own take first ends: older, by created_at, than the
	// player's live ticket (made by a frontend whose clock is ahead).
	ahead := events.LiveTicket{TicketID: "eve-ahead", Players: []string{"eve"}, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: time.Now().Add(time.Hour)}
	nobody := func(context.Context, events.LiveTicket, string) error { return nil }
	if got, err := sealing.players.TakeFirst(t.Context(), ahead, nobody); err != nil || !got.Live {
		t.Fatalf("eve's ticket from a clock ahead: %+v, %v", got, err)
	}
	if sealed(sealing, "eve", "") {
		t.Error("a ticket its take first superseded (older than eve's live one): sealed")
	}
	if sealed(plain, "cid", "") {
		t.Error("a frontend without seal keys sealed a ticket")
	}
}

// createQueued creates a ticket of mode for player, or for party if
// given (player first in it), with s (under Idempotency-Key key, unless
// empty) and returns its message, the last one stream holds on its
// shard's subject.
func createQueued(t *testing.T, s *Service, stream jetstream.Stream, player, mode, key string, party ...string) *jetstream.RawStreamMsg {
	t.Helper()
	skill := 1650
	req := Request{Mode: mode, Skill: &skill, Region: "eu", Party: party}
	caller := identity.Caller{PlayerID: player}
	if len(party) > 1 {
		caller = identity.Caller{Server: true, Subject: "party-service"} // who queues a party
	}
	v, err := s.Create(t.Context(), caller, req, key)
	if err != nil {
		t.Fatalf("create %s for %s %v: %v", mode, player, party, err)
	}
	raw, err := stream.GetLastMsgForSubject(t.Context(), s.subj.Ticket("eu", homeTier(t, skill)))
	if err != nil {
		t.Fatal(err)
	}
	if tk, err := events.DecodeTicket(raw.Data); err != nil || tk.TicketID != v.TicketID {
		t.Fatalf("last ticket stored %s (%v), want %s", raw.Data, err, v.TicketID)
	}
	return raw
}
