package matcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

type env struct {
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	subj events.Subjects
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	js := testkit.JetStream(t, nc)
	e := &env{srv: s, nc: nc, js: js}
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: e.subj}); err != nil {
		t.Fatal(err)
	}
	return e
}

// worker is a matcher worker on its own connection, so that a test can
// kill it: close its connection (no ack, no nak, no goodbye) and stop it.
type worker struct {
	w      *Worker
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

// startWorker starts a worker of cfg; each of opts is applied to it
// before it runs (a test clock, say).
func (e *env) startWorker(t *testing.T, cfg Config, opts ...func(*Worker)) *worker {
	t.Helper()
	nc := testkit.Connect(t, e.srv)
	js := testkit.JetStream(t, nc)
	if cfg.Sweep == 0 {
		cfg.Sweep = 50 * time.Millisecond
	}
	if cfg.StraySweep == 0 {
		cfg.StraySweep = 100 * time.Millisecond
	}
	w, err := New(cfg, js, e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &worker{w: w, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- w.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop is a clean shutdown: shards are handed back.
func (h *worker) stop(t *testing.T) {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil && !strings.Contains(err.Error(), "closed") {
		t.Errorf("worker Run: %v", err)
	}
}

// kill makes the worker vanish: its connection drops at once, so nothing
// it held is acked, nakked or released; its leases and heartbeat lapse.
func (h *worker) kill() {
	h.nc.Close()
	h.cancel()
	<-h.done
	h.cancel = nil
}

func (e *env) pub(t *testing.T, subject, data string) {
	t.Helper()
	if _, err := e.js.Publish(t.Context(), subject, []byte(data)); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

func results(t *testing.T, msgs []*nats.Msg) map[string][]events.Result {
	t.Helper()
	out := map[string][]events.Result{}
	for _, m := range msgs {
		r, err := events.DecodeResult(m.Data)
		if err != nil {
			t.Fatalf("bad result on %s: %v", m.Subject, err)
		}
		out[r.PlayerID] = append(out[r.PlayerID], r)
	}
	return out
}

func matches(t *testing.T, msgs []*nats.Msg) []events.Match {
	t.Helper()
	var out []events.Match
	for _, m := range msgs {
		mt, err := events.DecodeMatch(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, mt)
	}
	return out
}

// modesFile writes a rule set file of the modes listed in body (a JSON
// list) and returns its path.
func modesFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(p, []byte(`{"modes":`+body+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) claims(t *testing.T) *events.Claims {
	t.Helper()
	c, err := events.NewClaims(t.Context(), e.js, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTwoTicketsOfAShardAreMatched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())

	e.pub(t, e.subj.Ticket("eu", "gold"), `{"player_id":"alice","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "silver"), `{"player_id":"carol","skill":1400}`) // another shard: must not join
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"t-bob","player_id":"bob","skill":1850,"mode":"1v1"}`)

	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "no allocation request")
	m := matches(t, allocs())[0]
	if players := strings.Join(m.Players(), ","); (players != "alice,bob" && players != "bob,alice") || m.Region != "eu" || m.Tier != "gold" || m.Mode != "1v1" {
		t.Fatalf("match = %+v", m)
	}
	if m.Tickets[0].Team == m.Tickets[1].Team {
		t.Fatalf("1v1 players on one team: %+v", m.Tickets)
	}
	if got := allocs()[0].Header.Get(jetstream.MsgIDHeader); got != m.MatchID {
		t.Fatalf("Nats-Msg-Id = %q, want the match id %q", got, m.MatchID)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(res()) == 2 }, "want 2 matched results, got %d", len(res()))
	for p, rs := range results(t, res()) {
		if rs[0].Status != events.StatusMatched || rs[0].MatchID != m.MatchID {
			t.Errorf("%s: %+v", p, rs)
		}
	}
	// alice and bob are acked; carol waits in her shard, unacked; nobody
	// was offered to another region.
	testkit.Eventually(t, 5*time.Second, func() bool {
		return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 1 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 0
	}, "tickets not where they should be")
}

func TestBadTicketsAreDeadLetteredAndMatchingGoesOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{})
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	told := testkit.Collect(t, e.nc, e.subj.Result("x4"))
	toldStray := testkit.Collect(t, e.nc, e.subj.Result("x3"))

	bad := []struct {
		subject, data, field, reason string
	}{
		{"matchmaking.eu.gold", `not json`, "", "not a JSON object"},
		{"matchmaking.eu.gold", `{"player_id":"x1"}`, "skill", "required"},
		{"matchmaking.eu.gold", `{"player_id":"x2","skill":100}`, "skill", `belongs to tier "bronze"`},
		{"matchmaking.mars.gold", `{"player_id":"x3","skill":1700}`, "subject", "unknown region"},
		{"matchmaking.eu.gold", `{"player_id":"x4","skill":1700,"mode":"chess"}`, "mode", "unknown mode"},
		{"matchmaking.eu.gold", `{"party":["a","b"],"skill":1700}`, "party", "do not fit a team of 1"},
		{"matchmaking.eu.gold", `{"player_id":"x6","skill":1700,"latencies_ms":{"mars":5}}`, "latencies_ms.mars", "unknown region"},
		{"matchmaking.eu.gold.extra", `{"player_id":"x5","skill":1700}`, "", "want"},
	}
	for _, b := range bad {
		e.pub(t, b.subject, b.data)
	}
	e.pub(t, "matchmaking.eu.gold", `{"player_id":"p1","skill":1700}`)
	e.pub(t, "matchmaking.eu.gold", `{"player_id":"p2","skill":1800}`)

	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == len(bad) && len(allocs()) == 1 },
		"want %d dead letters and 1 match, got %d and %d", len(bad), len(dls()), len(allocs()))
	// Shards and the stray sweep reject side by side: find each by its
	// subject and payload.
	got := map[string]events.DeadLetter{}
	for _, m := range dls() {
		var d events.DeadLetter
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatal(err)
		}
		got[d.Subject+" "+string(d.Payload)] = d
	}
	for _, b := range bad {
		d, ok := got[b.subject+" "+b.data]
		if !ok {
			t.Errorf("no dead letter for %s %s", b.subject, b.data)
			continue
		}
		if d.Source != Source || d.StreamSeq == 0 || !strings.Contains(d.Reason, b.reason) {
			t.Errorf("dead letter %+v, want reason containing %q", d, b.reason)
		}
		if b.field != "" && (len(d.Fields) == 0 || d.Fields[0].Field != b.field) {
			t.Errorf("dead letter %s %s fields = %+v, want %q", b.subject, b.data, d.Fields, b.field)
		}
	}
	// A player the ticket named is told why it failed.
	testkit.Eventually(t, 5*time.Second, func() bool { return len(told()) == 1 }, "x4 was not told")
	if r := results(t, told())["x4"][0]; r.Status != events.StatusFailed || !strings.Contains(r.Reason, "unknown mode") {
		t.Fatalf("x4 result %+v", r)
	}
	// So is the player of a ticket on a subject no shard serves (the stray
	// sweep reads it as a shard would).
	testkit.Eventually(t, 5*time.Second, func() bool { return len(toldStray()) == 1 }, "x3 was not told")
	if r := results(t, toldStray())["x3"][0]; r.Status != events.StatusFailed || !strings.Contains(r.Reason, "unknown region") {
		t.Fatalf("x3 result %+v", r)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "rejected tickets left in the stream")
}

func TestTicketExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"300ms"}]`)})
	res := testkit.Collect(t, e.nc, e.subj.Result("lonely"))
	e.pub(t, "matchmaking.us.platinum", `{"ticket_id":"t-lonely","player_id":"lonely","skill":2500}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 1 }, "no expired result")
	r := results(t, res())["lonely"][0]
	if r.Status != events.StatusExpired || r.TicketID != "t-lonely" || !strings.Contains(r.Reason, "300ms") {
		t.Fatalf("result = %+v", r)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "expired ticket not acked")
}

func TestNewerTicketOfAPlayerSupersedesTheOlder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{})
	res := testkit.Collect(t, e.nc, e.subj.Result("alice"))
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"old","player_id":"alice","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "old not pooled")
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"new","player_id":"alice","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return len(res()) == 1 }, "old ticket not ended")
	if r := results(t, res())["alice"][0]; r.TicketID != "old" || r.Status != events.StatusCancelled || !strings.Contains(r.Reason, "superseded") {
		t.Fatalf("old ticket result = %+v", r)
	}
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"b","player_id":"bob","skill":1800}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "no match")
	m := matches(t, allocs())[0]
	for _, tk := range m.Tickets {
		if tk.TicketID == "old" {
			t.Fatalf("superseded ticket matched: %+v", m)
		}
	}
}

// TestTicketIdPublishedTwiceIsHeldOnce: two messages carry one ticket id
// (a hand-typed nats pub sent twice, past the duplicate window's message
// id). The shard holds the ticket once, matches it once, and acks both
// messages; a redelivery of the first would only refresh its ack.
func TestTicketIdPublishedTwiceIsHeldOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"twice","player_id":"echo","skill":1800}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"twice","player_id":"echo","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 1 }, "the second message was not dropped")
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "want the ticket held once")
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"other","player_id":"oscar","skill":1800}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"third","player_id":"tara","skill":1800}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 1 }, "tickets not matched")
	time.Sleep(200 * time.Millisecond)
	if ms := matches(t, allocs()); len(ms) != 1 {
		t.Fatalf("want 1 match, got %+v", ms)
	}
}

// TestRequeuedTicketsAreMatchedAgain: what an allocator that finds no
// game server does (release the match's claims, publish its tickets again
// with their ids). The two tickets meet again and make a new match, with
// a new id, so the allocator gets it (its id is the allocation request's
// message id) and the players hear "matched" again.
func TestRequeuedTicketsAreMatchedAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.Result("rita"))
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"ra","player_id":"rita","skill":1650}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"rb","player_id":"rob","skill":1660}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "no first match")
	first := published(t, allocs())[0]
	e.claims(t).Release(t.Context(), []string{"ra", "rb"}, events.MatchOwner(first.MatchID))
	for _, body := range []string{`{"ticket_id":"ra","player_id":"rita","skill":1650}`, `{"ticket_id":"rb","player_id":"rob","skill":1660}`} {
		msg := nats.NewMsg("matchmaking.eu.gold")
		msg.Data = []byte(body)
		msg.Header.Set(jetstream.MsgIDHeader, strings.Split(body, `"`)[3]+"-requeue-"+first.MatchID)
		if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 2 }, "the requeued tickets were not matched again")
	second := published(t, allocs())[1]
	if second.MatchID == first.MatchID || len(second.Tickets) != 2 {
		t.Fatalf("second match %+v after %s", second, first.MatchID)
	}
	// Stored, not dropped as a duplicate of the first: the allocator gets it.
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.AllocationsStream()) == 2 }, "the second match was not stored")
	testkit.Eventually(t, 5*time.Second, func() bool { return len(res()) == 2 }, "rita heard %d results, want matched twice", len(res()))
	for _, r := range results(t, res())["rita"] {
		if r.Status != events.StatusMatched {
			t.Fatalf("rita: %+v", r)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "requeued tickets left unacked")
}

// TestSkillWindowWidens: two tickets 300 apart are outside each other's
// window of 100 at first; the window grows by 100 a second, so they meet.
func TestSkillWindowWidens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","skill_window":{"initial":100,"per_second":100,"max":1000}}]`)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, "matchmaking.eu.gold", `{"player_id":"low","skill":1600}`)
	e.pub(t, "matchmaking.eu.gold", `{"player_id":"high","skill":1900}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() >= 2 }, "not pooled") // and copies offered to the neighbouring tiers
	time.Sleep(300 * time.Millisecond)
	if n := len(allocs()); n != 0 {
		t.Fatalf("tickets 300 apart matched with windows of about 130")
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "the widened windows never met")
}

// TestLatencyBudgetOpensAnotherRegion: a ticket queued in eu that reports
// 120 ms to us is offered to the us pool once its latency budget (50 ms,
// +200 ms a second) reaches 120 ms, and is matched there with a us ticket.
func TestLatencyBudgetOpensAnotherRegion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","latency_budget_ms":{"initial":50,"per_second":200,"max":300}}]`)})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, "matchmaking.us.gold", `{"ticket_id":"yank","player_id":"yank","skill":1650}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"traveller","player_id":"traveller","skill":1650,"latencies_ms":{"eu":20,"us":120,"asia":400}}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "no cross-region match")
	m := published(t, allocs())[0]
	if m.Region != "us" || len(m.Players()) != 2 {
		t.Fatalf("match %+v, want one in us with both", m)
	}
	// The home copy in eu is dropped when it finds its claim taken.
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"late","player_id":"late","skill":1650}`)
	time.Sleep(500 * time.Millisecond)
	for _, mt := range matches(t, allocs()) {
		for _, tk := range mt.Tickets {
			if tk.TicketID == "traveller" && mt.MatchID != m.MatchID {
				t.Fatalf("traveller matched twice: %+v", allocs())
			}
		}
	}
}

// TestCancelledTicketIsNeverMatched covers both ways a cancel reaches the
// matcher: the notice (ticket dropped at once) and, when the notice is
// lost, the claim found at match time.
func TestCancelledTicketIsNeverMatched(t *testing.T) {
	t.Parallel()
	for _, notice := range []bool{true, false} {
		t.Run(fmt.Sprintf("notice=%v", notice), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			w := e.startWorker(t, Config{})
			allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
			claims := e.claims(t)
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"gone","player_id":"quitter","skill":1800}`)
			testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "ticket not in the worker's pool")
			// What the frontend's DELETE does: claim, then notify.
			if won, _, err := claims.Claim(t.Context(), "gone", events.OwnerCancelled); !won || err != nil {
				t.Fatalf("cancel claim: %v %v", won, err)
			}
			if notice {
				data, _ := json.Marshal(events.Cancel{SchemaVersion: 1, TicketID: "gone", Region: "eu", Tier: "gold", Mode: "1v1"})
				if err := e.nc.Publish(e.subj.Cancel("eu", "gold"), data); err != nil {
					t.Fatal(err)
				}
				testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "cancelled ticket not dropped")
			}
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"b","player_id":"bob","skill":1800}`)
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"c","player_id":"carol","skill":1800}`)
			testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "no match")
			for _, tk := range matches(t, allocs())[0].Tickets {
				if tk.TicketID == "gone" {
					t.Fatal("cancelled ticket matched")
				}
			}
			testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "tickets left")
		})
	}
}

// TestTicketClaimedByAnotherMatchIsDropped is a redelivery of a ticket that
// another worker matched before it died without acking.
func TestTicketClaimedByAnotherMatchIsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	if won, _, _ := e.claims(t).Claim(t.Context(), "old", events.MatchOwner("m-elsewhere")); !won {
		t.Fatal("claim")
	}
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"old","player_id":"a","skill":1650}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"x","player_id":"b","skill":1650}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"y","player_id":"c","skill":1650}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "no match")
	var got []string
	for _, tk := range published(t, allocs())[0].Tickets {
		got = append(got, tk.TicketID)
	}
	if s := strings.Join(got, ","); s != "x,y" && s != "y,x" {
		t.Fatalf("matched %s, want x and y", s)
	}
}

// TestMatchLeftByADeadMatcherIsPublished: a matcher stored a match and
// claimed its tickets, then died before publishing it. When the tickets
// come back, the surviving worker publishes that match (same id) instead
// of dropping them as decided elsewhere.
func TestMatchLeftByADeadMatcherIsPublished(t *testing.T) {
	t.Parallel()
	// The dead matcher's match is found in its claims (events.HeaderMatch,
	// this release's), or, from a matcher of an older release, in its
	// record, its claims carrying nothing; or in its record, its claims
	// carrying what does not decode.
	for _, carried := range []string{"match", "", "garbage"} {
		inClaims := carried == "match"
		t.Run(fmt.Sprintf("claims carry %q", carried), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
			dead := events.Match{SchemaVersion: 1, MatchID: "m-dead", Mode: "1v1", Region: "eu", Tier: "gold",
				Tickets: []events.MatchTicket{{TicketID: "ta", Players: []string{"a"}, Skill: 1650}, {TicketID: "tb", Players: []string{"b"}, Team: 1, Skill: 1650}}}
			data, _ := json.Marshal(dead)
			group := events.ClaimGroup{IDs: []string{"ta", "tb"}, Owner: events.MatchOwner("m-dead")}
			if carried == "garbage" {
				group.Match = []byte("{")
			}
			if inClaims {
				group.Match = data
			} else {
				kv, err := e.js.KeyValue(t.Context(), e.subj.MatchesBucket())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := kv.Put(t.Context(), "m-dead", data); err != nil {
					t.Fatal(err)
				}
			}
			if got := e.claims(t).ClaimBatch(t.Context(), []events.ClaimGroup{group}); got[0].Err != nil || len(got[0].Lost) != 0 {
				t.Fatalf("claims: %+v", got)
			}
			e.startWorker(t, Config{})
			// Its tickets come back (redelivered to the new owner), with partners.
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"ta","player_id":"a","skill":1650}`)
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"tc","player_id":"c","skill":1650}`)
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"tb","player_id":"b","skill":1650}`)
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"td","player_id":"d","skill":1650}`)
			testkit.Eventually(t, 10*time.Second, func() bool {
				for _, m := range matches(t, allocs()) {
					if m.MatchID == "m-dead" {
						return true
					}
				}
				return false
			}, "the dead matcher's match was not published")
			for _, m := range matches(t, allocs()) {
				for _, tk := range m.Tickets {
					if (tk.TicketID == "ta" || tk.TicketID == "tb") && m.MatchID != "m-dead" {
						t.Fatalf("ticket %s also in match %s", tk.TicketID, m.MatchID)
					}
				}
			}
		})
	}
}

func testLog() io.Writer {
	if os.Getenv("MATCHER_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// Tickets that come past their max wait (delivered late, after a shard
// moved or a cluster lost quorum) are matched if a partner comes with
// them before the next sweep, and only a ticket left alone expires. Each
// used to be expired as it came, beside the partner behind it.
func TestLateTicketsMatchBeforeTheyExpire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A sweep far apart: the two partners come between two sweeps.
	e.startWorker(t, Config{Sweep: 5 * time.Second, RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2s"}]`)})
	res := testkit.Collect(t, e.nc, e.subj.Result("late-alone"))
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	created := time.Now().Add(-3 * time.Second).UTC().Format(time.RFC3339Nano)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"late-a","player_id":"late-a","skill":1800,"created_at":"`+created+`"}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"late-b","player_id":"late-b","skill":1800,"created_at":"`+created+`"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "the two late partners were not matched")
	if m := matches(t, allocs())[0]; len(m.Tickets) != 2 {
		t.Fatalf("match %+v", m)
	}
	e.pub(t, "matchmaking.eu.platinum", `{"ticket_id":"late-alone","player_id":"late-alone","skill":2500,"created_at":"`+created+`"}`)
	testkit.Eventually(t, 15*time.Second, func() bool { return len(res()) == 1 }, "a late ticket left alone did not expire")
	if r := results(t, res())["late-alone"][0]; r.Status != events.StatusExpired {
		t.Fatalf("late ticket alone: %+v", r)
	}
}

// A late ticket decided while on its way (cancelled here, its players'
// entry still naming it) is ended as it comes, not pooled: Take called it
// live without reading its claim, and a late partner coming in the same
// moment was matched with it, for the match to fail at its claim (review
// R3's F3). The partner waits alone and expires.
func TestLateTicketDecidedIsNotPooled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A sweep far apart: the two come between two sweeps.
	w := e.startWorker(t, Config{Sweep: 5 * time.Second, RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2s"}]`)})
	created := time.Now().Add(-3 * time.Second)
	claims := e.claims(t)
	players, err := events.NewPlayers(t.Context(), e.js, e.subj, claims)
	if err != nil {
		t.Fatal(err)
	}
	lt := events.LiveTicket{TicketID: "dead", Players: []string{"gone"}, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: created.UTC()}
	if _, err := players.Take(t.Context(), lt, func(context.Context, events.LiveTicket, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if won, _, err := claims.Claim(t.Context(), "dead", events.OwnerCancelled); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	res := testkit.Collect(t, e.nc, e.subj.Result("partner"))
	at := created.UTC().Format(time.RFC3339Nano)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"dead","player_id":"gone","skill":1800,"created_at":"`+at+`"}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"partner","player_id":"partner","skill":1800,"created_at":"`+at+`"}`)
	testkit.Eventually(t, 15*time.Second, func() bool { return len(res()) == 1 }, "the partner did not expire")
	if r := results(t, res())["partner"][0]; r.Status != events.StatusExpired {
		t.Fatalf("partner: %+v", r)
	}
	if n := testutil.ToFloat64(w.w.met.tickets.WithLabelValues("pooled")); n != 1 {
		t.Fatalf("%v tickets pooled, want 1 (the partner)", n)
	}
}

// A late ticket whose take fails (the players bucket away: deleted here,
// as a bucket without a leader would answer nothing) is expired as it
// comes, as before late tickets were pooled, not nakked again and again
// while the bucket is away, only to come later still (review R3's F5).
func TestLateTicketExpiresWhenItsTakeFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2s"}]`)})
	// Bound, and owning eu.gold: a ticket is pooled there.
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"warm","player_id":"warm","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() >= 1 }, "the worker took nothing in")
	if err := e.js.DeleteKeyValue(t.Context(), e.subj.PlayersBucket()); err != nil {
		t.Fatal(err)
	}
	res := testkit.Collect(t, e.nc, e.subj.Result("stuck"))
	created := time.Now().Add(-3 * time.Second).UTC().Format(time.RFC3339Nano)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"stuck","player_id":"stuck","skill":1800,"created_at":"`+created+`"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 1 }, "the late ticket did not expire")
	if r := results(t, res())["stuck"][0]; r.Status != events.StatusExpired {
		t.Fatalf("late ticket: %+v", r)
	}
}

// A late ticket whose id is another player's ticket's (a publisher
// reusing it) never ends that ticket, even when its dead letter cannot be
// stored: it waits to be dead-lettered. Its take's error lost
// ErrTicketIDTaken to the dead letter's, and the late branch expired it
// by its id, winning the other ticket's claim (review R4's H1).
func TestLateImpostorEndsNoTicket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2s"},{"name":"long","teams":2,"team_size":1,"max_wait":"60s"}]`)})
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"shared","player_id":"owner","mode":"long","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() >= 1 }, "the owner's ticket not pooled")
	if err := e.js.DeleteStream(t.Context(), e.subj.DeadLetterStream()); err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-3 * time.Second).UTC().Format(time.RFC3339Nano)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"shared","player_id":"impostor","mode":"1v1","skill":1800,"created_at":"`+created+`"}`)
	time.Sleep(3 * time.Second) // an expiry by the id came within a second
	if owner, err := e.claims(t).Owner(t.Context(), "shared"); err != nil || owner != "" {
		t.Fatalf("the owner's ticket claimed %q (%v) by a late impostor", owner, err)
	}
}

// A late ticket whose id is another player's decided ticket's is that
// ticket's impostor, not it: it is dead-lettered and its players told so
// ("failed"), never told the other ticket's outcome as their own (its
// claim was read before the take checked the id: review R4's M1).
func TestLateImpostorOfADecidedTicket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2s"}]`)})
	claims := e.claims(t)
	players, err := events.NewPlayers(t.Context(), e.js, e.subj, claims)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-3 * time.Second)
	lt := events.LiveTicket{TicketID: "taken-id", Players: []string{"real"}, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: created.UTC()}
	if _, err := players.Take(t.Context(), lt, func(context.Context, events.LiveTicket, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if won, _, err := claims.Claim(t.Context(), "taken-id", events.OwnerCancelled); err != nil || !won {
		t.Fatalf("claim: %v %v", won, err)
	}
	res := testkit.Collect(t, e.nc, e.subj.Result("impostor"))
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"taken-id","player_id":"impostor","skill":1800,"created_at":"`+created.UTC().Format(time.RFC3339Nano)+`"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) >= 1 }, "the impostor's player not told")
	if r := results(t, res())["impostor"][0]; r.Status != events.StatusFailed {
		t.Fatalf("the impostor's player told %+v, want failed", r)
	}
}

// A late ticket ends no other ticket of its players still waiting: here
// a player's ticket in a mode with a long max wait, and a newer one in a
// mode with a short one, delivered past it. The late ticket expires as
// it came; the waiting one stays live and untold. Taken as any ticket
// is, the late one superseded it ("cancelled") and then expired itself.
func TestLateTicketEndsNoWaitingTicket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"2s"},{"name":"long","teams":2,"team_size":1,"max_wait":"60s"}]`)})
	res := testkit.Collect(t, e.nc, e.subj.Result("keeper"))
	ago := func(d time.Duration) string { return time.Now().Add(-d).UTC().Format(time.RFC3339Nano) }
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"keep","player_id":"keeper","mode":"long","skill":1800,"created_at":"`+ago(30*time.Second)+`"}`)
	// At least: 30 s old, it is offered to the tiers beside gold, whose
	// copies count as well once there.
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() >= 1 }, "the waiting ticket not pooled")
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"late","player_id":"keeper","mode":"1v1","skill":1800,"created_at":"`+ago(3*time.Second)+`"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) >= 1 }, "the late ticket did not end")
	time.Sleep(500 * time.Millisecond) // a second result, if any, comes with the first
	got := results(t, res())["keeper"]
	if len(got) != 1 || got[0].TicketID != "late" || got[0].Status != events.StatusExpired {
		t.Fatalf("results %+v, want only the late ticket's expiry", got)
	}
	players, err := events.NewPlayers(t.Context(), e.js, e.subj, e.claims(t))
	if err != nil {
		t.Fatal(err)
	}
	if live, err := players.Live(t.Context(), "keeper"); err != nil || live != "keep" {
		t.Fatalf("the player's live ticket: %q, %v; want keep", live, err)
	}
}
