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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

type env struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	subj events.Subjects
}

// start runs a matcher with cfg against a fresh embedded server.
func start(t *testing.T, cfg Config) *env {
	t.Helper()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	js := testkit.JetStream(t, nc)
	e := &env{nc: nc, js: js}
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: e.subj}); err != nil {
		t.Fatal(err)
	}
	cfg.Tick = 50 * time.Millisecond
	m, err := New(cfg, js, e.subj, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, m.Run)
	return e
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

func TestTwoTicketsOfAShardAreMatched(t *testing.T) {
	t.Parallel()
	e := start(t, Config{})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())

	e.pub(t, e.subj.Ticket("eu", "gold"), `{"player_id":"alice","skill":1650}`)
	e.pub(t, e.subj.Ticket("eu", "silver"), `{"player_id":"carol","skill":1300}`) // another shard: must not join
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"t-bob","player_id":"bob","skill":1700,"mode":"1v1"}`)

	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "no allocation request")
	m, err := events.DecodeMatch(allocs()[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	players := strings.Join(m.Players(), ",")
	if players != "alice,bob" || m.Region != "eu" || m.Tier != "gold" || m.Mode != "1v1" {
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
	// Matched tickets are acked and gone; carol still waits, unacked.
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 1 }, "matched tickets not acked")
}

func TestBadTicketsAreDeadLetteredAndMatchingGoesOn(t *testing.T) {
	t.Parallel()
	e := start(t, Config{})
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())

	bad := []struct {
		subject, data, field, reason string
	}{
		{"matchmaking.eu.gold", `not json`, "", "not a JSON object"},
		{"matchmaking.eu.gold", `{"player_id":"x1"}`, "skill", "required"},
		{"matchmaking.eu.gold", `{"player_id":"x2","skill":100}`, "skill", `belongs to tier "bronze"`},
		{"matchmaking.mars.gold", `{"player_id":"x3","skill":1700}`, "subject", "unknown region"},
		{"matchmaking.eu.gold", `{"player_id":"x4","skill":1700,"mode":"chess"}`, "mode", "unknown mode"},
		{"matchmaking.eu.gold", `{"party":["a","b"],"skill":1700}`, "party", "do not fit a team of 1"},
		{"matchmaking.eu.gold.extra", `{"player_id":"x5","skill":1700}`, "", "want"},
	}
	for _, b := range bad {
		e.pub(t, b.subject, b.data)
	}
	e.pub(t, "matchmaking.eu.gold", `{"player_id":"p1","skill":1700}`)
	e.pub(t, "matchmaking.eu.gold", `{"player_id":"p2","skill":1800}`)

	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == len(bad) && len(allocs()) == 1 },
		"want %d dead letters and 1 match, got %d and %d", len(bad), len(dls()), len(allocs()))
	for i, m := range dls() {
		var d events.DeadLetter
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatal(err)
		}
		b := bad[i]
		if d.Source != Source || d.Subject != b.subject || string(d.Payload) != b.data || !strings.Contains(d.Reason, b.reason) {
			t.Errorf("dead letter %d = %+v, want subject %s reason containing %q", i, d, b.subject, b.reason)
		}
		if b.field != "" && (len(d.Fields) == 0 || d.Fields[0].Field != b.field) {
			t.Errorf("dead letter %d fields = %+v, want %q", i, d.Fields, b.field)
		}
	}
	// Players of a ticket that named them are told why it failed.
	res := testkit.Collect(t, e.nc, e.subj.Result("x4"))
	e.pub(t, "matchmaking.eu.gold", `{"player_id":"x4","skill":1700,"mode":"chess"}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return len(res()) == 1 }, "x4 was not told")
	if r := results(t, res())["x4"][0]; r.Status != events.StatusFailed || !strings.Contains(r.Reason, "unknown mode") {
		t.Fatalf("x4 result %+v", r)
	}
	// Dead-lettered tickets are terminated: nothing is left to redeliver.
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "tickets left in the stream")
}

func TestTicketExpires(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "modes.json")
	if err := os.WriteFile(file, []byte(`[{"name":"1v1","teams":2,"team_size":1,"max_wait":"300ms"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, Config{ModesFile: file})
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
	e := start(t, Config{})
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"old","player_id":"alice","skill":1650}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"new","player_id":"alice","skill":1650}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"b","player_id":"bob","skill":1650}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "no match")
	m, _ := events.DecodeMatch(allocs()[0].Data)
	if ids := m.Tickets[0].TicketID + "," + m.Tickets[1].TicketID; ids != "new,b" {
		t.Fatalf("matched tickets %s, want new,b", ids)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(results(t, res())["alice"]) == 2 }, "alice results")
	rs := results(t, res())["alice"]
	if rs[0].TicketID != "old" || rs[0].Status != events.StatusCancelled {
		t.Fatalf("old ticket result = %+v", rs[0])
	}
}

func TestStopReleasesThePool(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	js := testkit.JetStream(t, nc)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	first, err := New(Config{}, js, subj, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	if _, err := js.Publish(t.Context(), "matchmaking.eu.gold", []byte(`{"player_id":"a","skill":1650}`)); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(t.Context(), subj.TicketsStream(), events.ConsumerMatcher)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 1
	}, "first matcher never took the ticket")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A second matcher gets the released ticket at once (well before the
	// 30 s AckWait) and matches it with a new one.
	e := &env{nc: nc, js: js, subj: subj}
	allocs := testkit.Collect(t, nc, subj.AllAllocations())
	second, err := New(Config{}, js, subj, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { _ = second.Run(ctx2) }()
	e.pub(t, "matchmaking.eu.gold", `{"player_id":"b","skill":1650}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "released ticket not matched")
}

func (e *env) claims(t *testing.T) *events.Claims {
	t.Helper()
	c, err := events.NewClaims(t.Context(), e.js, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCancelledTicketIsNeverMatched covers both ways a cancel reaches the
// matcher: the notice (ticket dropped at once) and, when the notice is
// lost, the claim found at match time.
func TestCancelledTicketIsNeverMatched(t *testing.T) {
	t.Parallel()
	for _, notice := range []bool{true, false} {
		t.Run(fmt.Sprintf("notice=%v", notice), func(t *testing.T) {
			t.Parallel()
			e := start(t, Config{})
			allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
			claims := e.claims(t)
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"gone","player_id":"quitter","skill":1650}`)
			testkit.Eventually(t, 5*time.Second, func() bool {
				cons, _ := e.js.Consumer(t.Context(), e.subj.TicketsStream(), events.ConsumerMatcher)
				info, err := cons.Info(t.Context())
				return err == nil && info.NumAckPending == 1
			}, "ticket not pooled")
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
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"b","player_id":"bob","skill":1650}`)
			e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"c","player_id":"carol","skill":1650}`)
			testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "no match")
			m, _ := events.DecodeMatch(allocs()[0].Data)
			for _, tk := range m.Tickets {
				if tk.TicketID == "gone" {
					t.Fatalf("cancelled ticket matched: %+v", m)
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
	e := start(t, Config{})
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	if won, _, _ := e.claims(t).Claim(t.Context(), "old", events.MatchOwner("m-elsewhere")); !won {
		t.Fatal("claim")
	}
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"old","player_id":"a","skill":1650}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"x","player_id":"b","skill":1650}`)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"y","player_id":"c","skill":1650}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "no match")
	m, _ := events.DecodeMatch(allocs()[0].Data)
	if ids := m.Tickets[0].TicketID + "," + m.Tickets[1].TicketID; ids != "x,y" {
		t.Fatalf("matched %s, want x,y", ids)
	}
}
