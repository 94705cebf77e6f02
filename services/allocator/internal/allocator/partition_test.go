package allocator

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// cutKV is an allocations bucket whose next creates and gets time out,
// as they do for an allocator whose traffic to NATS is cut, until the
// heal; whose next lostCreates are stored, but their answers time out
// on the way back; and whose next updates time out.
type cutKV struct {
	jetstream.KeyValue
	creates, gets, lostCreates, updates atomic.Int32
}

func (c *cutKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	if c.updates.Add(-1) >= 0 {
		return 0, context.DeadlineExceeded
	}
	return c.KeyValue.Update(ctx, key, value, last)
}

func (c *cutKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if c.creates.Add(-1) >= 0 {
		return 0, context.DeadlineExceeded
	}
	rev, err := c.KeyValue.Create(ctx, key, value, opts...)
	if err == nil && c.lostCreates.Add(-1) >= 0 {
		return 0, context.DeadlineExceeded
	}
	return rev, err
}

func (c *cutKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if c.gets.Add(-1) >= 0 {
		return nil, context.DeadlineExceeded
	}
	return c.KeyValue.Get(ctx, key)
}

// servers answers from free while it is above zero, else has no capacity.
type servers struct{ free, calls atomic.Int32 }

func (s *servers) Allocate(context.Context, events.Match) (Server, error) {
	s.calls.Add(1)
	if s.free.Load() <= 0 {
		return Server{}, ErrNoCapacity
	}
	return Server{Name: "gs", Address: "127.0.0.1", Port: 7000}, nil
}

// partitioned is one allocator's assigner and failure over a real NATS
// server, its allocations bucket behind a cutKV, without the router: a
// test hands each delivery to handler itself.
type partitioned struct {
	recs    *records
	js      jetstream.JetStream
	subj    events.Subjects
	kv      *cutKV
	backend *servers
	fail    *failure
	claims  *events.Claims
	as      *assigner
	handler message.HandlerFunc
	results func() []*nats.Msg
}

func newPartitioned(t *testing.T, requeue bool) *partitioned {
	t.Helper()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	p := &partitioned{js: js, backend: &servers{}}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), p.subj.AllocationsBucket())
	if err != nil {
		t.Fatal(err)
	}
	p.kv = &cutKV{KeyValue: kv}
	if p.claims, err = events.NewClaims(t.Context(), js, p.subj); err != nil {
		t.Fatal(err)
	}
	signer, err := jointoken.NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pub := events.NewPublisher(js, p.subj)
	recs := &records{kv: p.kv, backend: p.backend, log: log, now: time.Now, unrecorded: &unrecorded{}}
	p.recs = recs
	p.fail = &failure{records: recs, pub: pub, claims: p.claims, requeue: requeue, met: newMetrics(), log: log, now: time.Now}
	p.as = &assigner{records: recs, requeue: p.fail.requeueBackfill, signer: signer, pub: pub, met: p.fail.met, tokenTTL: time.Minute, log: log, now: time.Now}
	p.handler = p.fail.giveUp(func(msg *message.Message) ([]*message.Message, error) { return nil, p.as.handle(msg) })
	p.results = testkit.Collect(t, nc, p.subj.AllResults())
	return p
}

// deliver hands m to the handler as its n-th delivery (n only names
// it: every delivery is handled alike).
func (p *partitioned) deliver(m events.Match, n int) error {
	_, err := p.handler(nthDelivery(m, n))
	return err
}

// nthDelivery is m's n-th delivery, a token of its own in its metadata, as
// the router's unmarshaler gives it; handled again, it is a retry.
func nthDelivery(m events.Match, n int) *message.Message {
	data, _ := json.Marshal(m)
	msg := message.NewMessage(fmt.Sprintf("%s-%d", m.MatchID, n), data)
	newDelivery(msg)
	return msg
}

// assignedOnce fails t unless the pair's two players were told they
// were assigned, and nothing else, after one call to the backend.
func (p *partitioned) assignedOnce(t *testing.T) {
	t.Helper()
	if n, c := p.told(t), p.backend.calls.Load(); n[events.StatusAssigned] != 2 || len(n) != 1 || c != 1 {
		t.Fatalf("results %v, %d backend calls; want 2 assigned, 1 call", n, c)
	}
}

// reconciledOnce fails t unless one record was counted reconciled, how.
func (p *partitioned) reconciledOnce(t *testing.T, how string) {
	t.Helper()
	if n := testutil.ToFloat64(p.recs.reconciled.WithLabelValues(how)); n != 1 {
		t.Fatalf("%v records counted reconciled %s; want 1", n, how)
	}
}

// told counts the results stored, by status. They are stored before the
// handler returns (the publish waits for the stream's ack), so they are
// read from the stream, with nothing to wait for.
func (p *partitioned) told(t *testing.T) map[events.Status]int {
	t.Helper()
	n := map[events.Status]int{}
	for _, data := range storedMsgs(t, p.js, p.subj.ResultsStream()) {
		r, err := events.DecodeResult(data)
		if err != nil {
			t.Fatal(err)
		}
		n[r.Status]++
	}
	return n
}

// deadLetters counts the dead letters stored (before the handler returns).
func (p *partitioned) deadLetters(t *testing.T) int {
	t.Helper()
	return int(testkit.StreamMsgs(t, p.js, p.subj.DeadLetterStream()))
}

// storedMsgs are the payloads stream holds now, in order.
func storedMsgs(t *testing.T, js jetstream.JetStream, stream string) [][]byte {
	t.Helper()
	st, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted (a subject's older results)
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Data)
	}
	return out
}

func pair(id string) events.Match {
	return events.Match{SchemaVersion: events.SchemaVersion, MatchID: id, Mode: "1v1", Region: "eu", Tier: "gold", Tickets: []events.MatchTicket{
		{TicketID: "lo", Players: []string{"lo"}, Skill: 1500, CreatedAt: time.Now().UTC()},
		{TicketID: "pa", Players: []string{"pa"}, Skill: 1510, Team: 1, CreatedAt: time.Now().UTC()}}}
}

// TestNATSTimeoutIsNotAFailure (#19): the allocation record of a match
// cannot be written (NATS times out: the allocator's traffic is cut),
// and the cut heals while the match is given up. The match is nakked,
// not failed: its next delivery assigns it. (Before, the give-up marked
// the record failed at the heal and told the players "failed" while a
// server was free.)
func TestNATSTimeoutIsNotAFailure(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.backend.free.Store(1)
	p.kv.creates.Store(1) // the handler's reservation times out; the cut heals after it
	m := pair("m-cut")
	if err := p.deliver(m, 1); err == nil {
		t.Fatal("a match whose record timed out was acked")
	}
	if n, d := p.told(t), p.deadLetters(t); len(n) != 0 || d != 0 {
		t.Fatalf("after a NATS timeout: results %v, %d dead letters", n, d)
	}
	if err := p.deliver(m, 2); err != nil {
		t.Fatal(err)
	}
	if n, d := p.told(t), p.deadLetters(t); n[events.StatusAssigned] != 2 || len(n) != 1 || d != 0 {
		t.Fatalf("after the heal: results %v, %d dead letters", n, d)
	}
}

// TestALostReservationIsTheDeliverysOwn: a delivery's reservation of
// its match's record is stored, but its answer is lost (NATS slow, or
// cut just then). Another delivery of the match (another allocator's)
// finds the record held and allocates nothing; the delivery's own retry,
// a moment later, finds the record its own and assigns the match, one
// server for it. Before, the retry found it held too, as another
// request's, until it was stale (30 s): the players heard their
// assignment that much later (14 matches of #20's chaos run s).
func TestALostReservationIsTheDeliverysOwn(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.backend.free.Store(1)
	p.kv.lostCreates.Store(1)
	m := pair("m-lost")
	first := nthDelivery(m, 1)
	if _, err := p.handler(first); err == nil {
		t.Fatal("a match whose reservation went unanswered was acked")
	}
	if err := p.deliver(m, 2); !errors.Is(err, errInProgress) {
		t.Fatalf("another delivery while the first holds the record: %v, want %v", err, errInProgress)
	}
	if _, err := p.handler(first); err != nil {
		t.Fatalf("the first delivery's retry: %v", err)
	}
	p.assignedOnce(t)
}

// TestEachDeliveryHasItsOwnToken: the router's unmarshaler gives every
// NATS delivery a token of its own, the same message delivered again
// (another allocator's, or after a nak) another one, so no delivery takes
// another's reservation as its own; and no header names it (a request
// published with the metadata's names as headers is a forgery).
func TestEachDeliveryHasItsOwnToken(t *testing.T) {
	t.Parallel()
	in := forgedDelivery{nats.Header{jetstream.MsgIDHeader: []string{"m-1"}, metaDelivery: []string{"forged"}, metaAsked: []string{"forged"}, metaCounted: []string{"forged"}, metaReserved: []string{"forged"}}}
	a, b := unmarshal(in), unmarshal(in)
	da, db := deliveryFrom(withDelivery(t.Context(), a)), deliveryFrom(withDelivery(t.Context(), b))
	if da.token() == "" || da.token() == db.token() || da.token() == "forged" {
		t.Fatalf("delivery tokens %q and %q: want two, distinct, made here", da.token(), db.token())
	}
	mine := record{Pending: 1, Delivery: da.token()}
	if !da.owns(mine) || db.owns(mine) || deliveryFrom(t.Context()).owns(record{Pending: 1}) {
		t.Fatal("a pending record is owned by a delivery other than the one that wrote it")
	}
	if da.reserved() != "" || da.asked() {
		t.Fatal("a header says the delivery reserved a record, or asked the backend")
	}
	da.asking()
	if da.owns(mine) {
		t.Fatal("a delivery that asked the backend takes its record again")
	}
	if !db.countOnce() || db.countOnce() {
		t.Fatal("a delivery's outcome is not counted once (a header may not say it was)")
	}
}

// forgedDelivery is a delivery of a match with headers of its sender's choosing.
type forgedDelivery struct{ header nats.Header }

func (f forgedDelivery) Headers() nats.Header { return f.header }
func (forgedDelivery) Data() []byte           { return []byte("{}") }
func (forgedDelivery) Subject() string        { return "allocations.eu" }
func (forgedDelivery) Reply() string          { return "" }
func (forgedDelivery) Metadata() (*jetstream.MsgMetadata, error) {
	return nil, jetstream.ErrNotJSMessage
}
func (forgedDelivery) Ack() error                       { return nil }
func (forgedDelivery) DoubleAck(context.Context) error  { return nil }
func (forgedDelivery) Nak() error                       { return nil }
func (forgedDelivery) NakWithDelay(time.Duration) error { return nil }
func (forgedDelivery) InProgress() error                { return nil }
func (forgedDelivery) Term() error                      { return nil }
func (forgedDelivery) TermWithReason(string) error      { return nil }

// TestAGiveUpIsNakkedUntilItIsStored (#19): no server is free, and the
// give-up cannot be stored (its record reads time out) on a dozen
// deliveries in a row: each is nakked, past the ten the consumer once
// allowed, telling no one; the first delivery that can store it tells
// the players "failed" and dead-letters the match. The same for a match
// whose reservations time out: each delivery naks, none fails it, and
// the first after the heal assigns it. No delivery is dropped, and none
// is held in the allocator waiting for NATS.
func TestAGiveUpIsNakkedUntilItIsStored(t *testing.T) {
	t.Parallel()
	const cut = 12
	p := newPartitioned(t, false)
	p.kv.gets.Store(cut) // one give-up read a delivery
	for n := 1; n <= cut; n++ {
		if err := p.deliver(pair("m-full"), n); err == nil {
			t.Fatalf("delivery %d acked while its give-up could not be stored", n)
		}
	}
	if n, d := p.told(t), p.deadLetters(t); len(n) != 0 || d != 0 {
		t.Fatalf("after %d nakked deliveries: results %v, %d dead letters", cut, n, d)
	}
	if err := p.deliver(pair("m-full"), cut+1); err != nil {
		t.Fatal(err)
	}
	if n, d := p.told(t), p.deadLetters(t); n[events.StatusFailed] != 2 || len(n) != 1 || d != 1 {
		t.Fatalf("given up: results %v, %d dead letters", n, d)
	}

	p.backend.free.Store(1)
	p.kv.creates.Store(cut) // one reservation a delivery
	for n := 1; n <= cut; n++ {
		if err := p.deliver(pair("m-cut"), n); err == nil {
			t.Fatalf("delivery %d acked while its record could not be written", n)
		}
	}
	if err := p.deliver(pair("m-cut"), cut+1); err != nil {
		t.Fatal(err)
	}
	if n, d := p.told(t), p.deadLetters(t); n[events.StatusAssigned] != 2 || n[events.StatusFailed] != 2 || d != 1 {
		t.Fatalf("after a NATS timeout: results %v, %d dead letters", n, d)
	}
}

// TestPartlyRequeuedMatchIsNeverAssigned (finding 3): a match with no
// server is requeued, and one of its claims cannot be given back (the
// other is): the requeue stops, the match is nakked. A server is free by
// its next delivery; the match must not take it, for the ticket whose
// claim was given back may be in another match by then (its copy in the
// queue): the next delivery finishes the requeue instead, and one after
// that (an ack lost) stores nothing more.
func TestPartlyRequeuedMatchIsNeverAssigned(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, true)
	rel := &stuckRelease{claims: p.claims, stuck: "lo", fails: 1}
	p.fail.claims = rel
	m := pair("m-part")
	if lost, err := p.claims.ClaimAll(t.Context(), []string{"lo", "pa"}, events.MatchOwner(m.MatchID)); err != nil || len(lost) > 0 {
		t.Fatal(lost, err)
	}
	if err := p.deliver(m, 1); err == nil {
		t.Fatal("requeue with lo's claim kept reported done: the match is acked")
	}
	if owner, _ := p.claims.Owner(t.Context(), "pa"); owner != "" {
		t.Fatalf("setup: pa's claim is %q, want given back", owner)
	}
	p.backend.free.Store(1)
	for n := 2; n <= 3; n++ {
		if err := p.deliver(m, n); err != nil {
			t.Fatal(err)
		}
	}
	if n, q := p.told(t), testkit.StreamMsgs(t, p.js, p.subj.TicketsStream()); n[events.StatusAssigned] != 0 || n[events.StatusQueued] != 2 || q != 2 {
		t.Fatalf("partly requeued match, a server free: results %v, %d tickets published again; want 2 queued and 2 tickets", n, q)
	}
	if c := p.backend.calls.Load(); c != 1 {
		t.Fatalf("backend asked %d times, want once (the first delivery)", c)
	}
	for _, id := range []string{"lo", "pa"} {
		if owner, err := p.claims.Owner(t.Context(), id); err != nil || owner != "" {
			t.Fatalf("claim of %s = %q, %v after the requeue", id, owner, err)
		}
	}
}

// TestAPlacedFillIsToldAgainOnceItsRoomIsGone (R2-4): a match that fills
// room r1 is given the room's server and erin told, but its ack is lost;
// the room closes (its match record is gone) before the redelivery. The
// redelivery tells erin the same again (the same join token) and is
// acked. (Before, it took the room for gone and requeued the match, which
// its record refuses, for it has a server: nakked on every delivery.)
func TestAPlacedFillIsToldAgainOnceItsRoomIsGone(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	matches, err := p.js.KeyValue(t.Context(), p.subj.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	room := events.Match{SchemaVersion: events.SchemaVersion, MatchID: "r1", Mode: "2v2", Region: "eu", Tier: "gold", AcceptsBackfill: true,
		Tickets: []events.MatchTicket{{TicketID: "t1", Players: []string{"a", "b"}, Skill: 1600}, {TicketID: "t2", Players: []string{"c", "d"}, Skill: 1700, Team: 1}}}
	data, _ := json.Marshal(room)
	if _, err := matches.Put(t.Context(), "r1", data); err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(record{Server: &gs1})
	if _, err := p.kv.Put(t.Context(), "r1", rec); err != nil {
		t.Fatal(err)
	}
	p.as.rooms = &rooms{matches: matches, src: &showing{reqs: []play.Backfill{{MatchID: "r1", Ask: 1, Seats: []int{0, 1}}}}, records: p.as.records, turnover: backfillDefaults.Turnover}
	fill := events.Match{SchemaVersion: events.SchemaVersion, MatchID: "f1", Mode: "2v2", Region: "eu", Tier: "gold",
		Tickets:  []events.MatchTicket{{TicketID: "t-erin", Players: []string{"erin"}, Skill: 1640, Team: 1, CreatedAt: time.Now().UTC()}},
		Backfill: &events.MatchBackfill{BackfillID: play.BackfillID("r1", 1), MatchID: "r1"}}
	if err := p.deliver(fill, 1); err != nil {
		t.Fatal(err)
	}
	if err := matches.Delete(t.Context(), "r1"); err != nil { // the room closed
		t.Fatal(err)
	}
	if err := p.deliver(fill, 2); err != nil {
		t.Fatalf("the fill's redelivery, its room gone: %v", err)
	}
	// Both publishes reach the subscriber; the stream stores one.
	testkit.Eventually(t, 5*time.Second, func() bool { return len(p.results()) == 2 }, "erin told %d times, want twice", len(p.results()))
	var tokens []string
	for _, msg := range p.results() {
		r, _ := events.DecodeResult(msg.Data)
		if r.Status != events.StatusAssigned || r.Assignment == nil || r.Assignment.Server != gs1.Name || r.Assignment.Room != "r1" {
			t.Fatalf("erin told %+v", r)
		}
		tokens = append(tokens, r.Assignment.JoinToken)
	}
	if tokens[0] != tokens[1] {
		t.Fatal("the redelivery signed erin another join token")
	}
	if n := p.told(t); n[events.StatusAssigned] != 1 || len(n) != 1 || p.deadLetters(t) != 0 {
		t.Fatalf("results stored %v", n)
	}
}

// TestUnavailable: what counts as NATS not answering, never a failure.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"kv timeout", fmt.Errorf("allocation record of m: %w", context.DeadlineExceeded), true},
		{"request timeout", fmt.Errorf("match m: %w", nats.ErrTimeout), true},
		{"no responders", jetstream.ErrNoStreamResponse, true},
		{"jetstream 503", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"backend timeout", fmt.Errorf("allocate match m: %w", &backendError{err: context.DeadlineExceeded}), false},
		{"no capacity", ErrNoCapacity, false},
		{"key exists", jetstream.ErrKeyExists, false},
	} {
		if got := unavailable(c.err); got != c.want {
			t.Errorf("%s: unavailable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// hangingUpdates is an allocations bucket whose updates go unanswered (a
// cut between the backend's answer and the record's write): each waits
// for its ctx's end, or jetstream's default 5 s when ctx has none.
type hangingUpdates struct{ jetstream.KeyValue }

func (h hangingUpdates) Update(ctx context.Context, _ string, _ []byte, _ uint64) (uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestTheServersRecordIsTriedWithinItsBound: once the backend gave a
// server, its record is written within events.ClaimCallTimeout, tries
// and waits included, as events.AllocatorStopGrace counts on. Before,
// each of five tries waited its own 5 s: 26.5 s with the waits, past
// the shutdown grace and near a reservation's life.
func TestTheServersRecordIsTriedWithinItsBound(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.backend.free.Store(1)
	rs := &records{kv: hangingUpdates{p.kv.KeyValue}, backend: p.backend, log: slog.New(slog.DiscardHandler), now: time.Now}
	done := make(chan error, 1)
	go func() {
		_, _, err := rs.allocate(context.Background(), pair("m-hang"))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("allocate succeeded with its record unwritten")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server's record still being tried after 10 s")
	}
}
