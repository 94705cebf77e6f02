package tickets

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/capacity"
)

// countingKV counts the reads of a bucket.
type countingKV struct {
	jetstream.KeyValue
	gets atomic.Int64
}

func (c *countingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	c.gets.Add(1)
	return c.KeyValue.Get(ctx, key)
}

// newPlainService is a Service on a provisioned server of its own, with
// no tracker and room everywhere.
func newPlainService(t *testing.T) (*Service, jetstream.JetStream) {
	t.Helper()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers}, js, events.Subjects{}, noTracker{}, roomEverywhere{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

// createKeyedA creates player a's ticket (skill 1650, eu) on s under
// Idempotency-Key k1, and returns the caller, the request and its view.
func createKeyedA(t *testing.T, s *Service) (identity.Caller, Request, View) {
	t.Helper()
	a := identity.Caller{PlayerID: "a"}
	skill := 1650
	req := Request{Skill: &skill, Region: "eu"}
	first, err := s.Create(t.Context(), a, req, "k1")
	if err != nil {
		t.Fatal(err)
	}
	return a, req, first
}

// A keyed creation (every browser sends an Idempotency-Key) reads nothing
// from the tickets bucket on its first attempt: its record is created
// only if absent, and finding it is what makes an attempt a repeat. A
// repeat of the same request gets the same ticket, queued once; another
// request under the key is refused.
func TestKeyedCreationReadsNothingFirst(t *testing.T) {
	t.Parallel()
	s, js := newPlainService(t)
	subj := events.Subjects{}
	kv := &countingKV{KeyValue: s.kv}
	s.kv = kv
	a, req, first := createKeyedA(t, s)
	if n := kv.gets.Load(); n != 0 {
		t.Fatalf("first keyed attempt read the tickets bucket %d times, want none", n)
	}
	again, err := s.Create(t.Context(), a, req, "k1")
	if err != nil || again.TicketID != first.TicketID {
		t.Fatalf("repeat: %+v %v, want ticket %s", again, err, first.TicketID)
	}
	if n := testkit.StreamMsgs(t, js, subj.TicketsStream()); n != 1 {
		t.Fatalf("%d tickets queued, want the one", n)
	}
	other := 1700
	if _, err := s.Create(t.Context(), a, Request{Skill: &other, Region: "eu"}, "k1"); !errors.Is(err, ErrIdempotencyReuse) {
		t.Fatalf("another request under the key: %v, want %v", err, ErrIdempotencyReuse)
	}
}

// A repeat of a keyed creation whose ticket it queued (or found with an
// outcome) answers the ticket even when the read of its outcome fails
// (RESULTS cut off): an error sent away a client whose last retry had
// queued the ticket, and a matcher matched it (chaos S77's no-show). It
// answers what the ticket's claim says: queued with none, cancelled for
// a ticket cancelled since.
func TestARepeatWhoseOutcomeIsUnreadAnswersItsTicket(t *testing.T) {
	t.Parallel()
	s, _ := newPlainService(t)
	a, req, first := createKeyedA(t, s)
	results := s.results
	s.results = cutResults{results}
	again, err := s.Create(t.Context(), a, req, "k1")
	if err != nil || again.TicketID != first.TicketID || again.Status != events.StatusQueued {
		t.Fatalf("repeat with its outcome unread: %+v, %v; want ticket %s queued", again, err, first.TicketID)
	}
	s.results = results
	if _, err := s.Cancel(t.Context(), a, first.TicketID, ""); err != nil {
		t.Fatal(err)
	}
	s.results = cutResults{results}
	again, err = s.Create(t.Context(), a, req, "k1")
	if err != nil || again.TicketID != first.TicketID || again.Status != events.StatusCancelled {
		t.Fatalf("repeat of a cancelled ticket with its outcome unread: %+v, %v; want ticket %s cancelled", again, err, first.TicketID)
	}
}

// A repeat whose ticket's claim was won by an expiry that never told its
// players (chaos S80b: the expiry's publish timed out, and the creation
// that tracked it failed and let it go) tells them the claim's outcome.
// It answered the claim's outcome before (View reads the claim when no
// result is stored) and told nothing: RESULTS stayed empty.
func TestARepeatOfAClaimedUntoldTicketTellsIt(t *testing.T) {
	t.Parallel()
	s, _ := newPlainService(t)
	a, req, first := createKeyedA(t, s)
	if won, _, err := s.claims.Claim(t.Context(), first.TicketID, events.OwnerExpired); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	again, err := s.Create(t.Context(), a, req, "k1")
	if err != nil || again.TicketID != first.TicketID || again.Status != events.StatusExpired {
		t.Fatalf("repeat of a ticket claimed expired: %+v, %v; want ticket %s expired", again, err, first.TicketID)
	}
	raw, err := s.results.GetLastMsgForSubject(t.Context(), s.subj.Result("a"))
	if err != nil {
		t.Fatalf("no result stored for player a: %v", err)
	}
	r, err := events.DecodeResult(raw.Data)
	if err != nil || r.TicketID != first.TicketID || r.Status != events.StatusExpired {
		t.Fatalf("player a's last result %+v, %v; want %s expired", r, err, first.TicketID)
	}
}

// drainAll drains every shard once on, refusing with errDrainedAll.
type drainAll struct{ on bool }

var errDrainedAll = errors.New("test: drained")

func (d *drainAll) CheckShard(s events.Shard) error {
	if d.on {
		return errDrainedAll
	}
	return nil
}

// A party [a, b]: a has no ticket, b has one waiting. TakeFirst makes the
// party's ticket a's live ticket and stops at b (ErrWouldSupersede); the
// publish fails (503), and the shard is drained. The repeat is refused as
// a solo player's in b's place would be: the first attempt never made the
// ticket b's live ticket (review R1: drainedUntaken read a's entry only).
func TestDrainRefusesTheRepeatOfAPartlyTakenParty(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Parse([]byte(`{"modes":[{"name":"2v2","teams":2,"team_size":2,"max_wait":"1m"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	d := &drainAll{}
	s, err := New(t.Context(), Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers, Rules: rules.Fixed(set), Drains: d},
		js, subj, noTracker{}, roomEverywhere{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	skill := 1650
	backend := identity.Caller{Server: true, Subject: "party-service"} // who queues a party
	wb, err := s.Create(t.Context(), backend, Request{Mode: "2v2", Skill: &skill, Region: "eu", Party: []string{"b", "c"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(t.Context(), subj.TicketsStream()); err != nil {
		t.Fatal(err)
	}
	req := Request{Mode: "2v2", Skill: &skill, Region: "eu", Party: []string{"a", "b"}}
	if _, err := s.Create(t.Context(), backend, req, "k"); err == nil {
		t.Fatal("first attempt succeeded without a tickets stream")
	}
	// The premise: a's entry names the party's ticket, b's the waiting one.
	la, err := s.players.Live(t.Context(), "a")
	if err != nil || la == "" || la == wb.TicketID {
		t.Fatalf("a's live ticket %q (%v), want the party's", la, err)
	}
	if live, _ := s.players.Live(t.Context(), "b"); live != wb.TicketID {
		t.Fatalf("b's live %s, want waiting %s", live, wb.TicketID)
	}
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	d.on = true
	v, err := s.Create(t.Context(), backend, req, "k")
	lb, _ := s.players.Live(t.Context(), "b")
	if n := testkit.StreamMsgs(t, js, subj.TicketsStream()); !errors.Is(err, errDrainedAll) || n != 0 || lb != wb.TicketID {
		t.Fatalf("repeat of a ticket never made b's live ticket into a drained shard: %+v, %v (%d queued, b's live %s): want the drain's refusal, nothing queued, b's waiting %s live", v, err, n, lb, wb.TicketID)
	}
}

// Repeat (a repeat served past the frontend's limit) answers the ticket
// an earlier attempt under the key made, as Create's repeat does, and
// makes nothing: a key that made no ticket, or a request with no key,
// is ErrNotFound with nothing stored or queued; another request under
// the key is refused.
func TestRepeatAnswersOnlyATicketMade(t *testing.T) {
	t.Parallel()
	s, js := newPlainService(t)
	subj := events.Subjects{}
	a := identity.Caller{PlayerID: "a"}
	skill := 1650
	req := Request{Skill: &skill, Region: "eu"}
	for _, key := range []string{"k1", ""} {
		if v, err := s.AnswerRepeat(t.Context(), a, req, key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("repeat of key %q that made nothing: %+v %v, want %v", key, v, err, ErrNotFound)
		}
	}
	if n := testkit.StreamMsgs(t, js, subj.TicketsStream()); n != 0 {
		t.Fatalf("%d tickets queued by repeats of nothing, want none", n)
	}
	if _, err := s.kv.Get(t.Context(), "i"+hashHex(a.Key()+"\x00k1")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("record of a repeat of nothing: %v, want none stored", err)
	}
	_, _, first := createKeyedA(t, s)
	again, err := s.AnswerRepeat(t.Context(), a, req, "k1")
	if err != nil || again.TicketID != first.TicketID || again.Status != events.StatusQueued {
		t.Fatalf("repeat of a ticket made: %+v %v, want ticket %s queued", again, err, first.TicketID)
	}
	if n := testkit.StreamMsgs(t, js, subj.TicketsStream()); n != 1 {
		t.Fatalf("%d tickets queued, want the one", n)
	}
	other := 1700
	if _, err := s.AnswerRepeat(t.Context(), a, Request{Skill: &other, Region: "eu"}, "k1"); !errors.Is(err, ErrIdempotencyReuse) {
		t.Fatalf("another request under the key: %v, want %v", err, ErrIdempotencyReuse)
	}
	// A key that made nothing, for a region with no room: said so, as
	// Create says it, not refused for overload; its ticket, answered.
	s.capacity = noRoom{}
	if _, err := s.AnswerRepeat(t.Context(), a, req, "k2"); !errors.Is(err, capacity.ErrFull) {
		t.Fatalf("repeat of nothing in a full region: %v, want %v", err, capacity.ErrFull)
	}
	if again, err := s.AnswerRepeat(t.Context(), a, req, "k1"); err != nil || again.TicketID != first.TicketID {
		t.Fatalf("repeat of a ticket made, its region full since: %+v %v", again, err)
	}
}

type noRoom struct{}

func (noRoom) Check(string) error { return capacity.ErrFull }
