package allocator_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/local"
)

// The allocator's join key in these tests, and what game servers verify with.
var (
	joinKey  = ed25519.NewKeyFromSeed([]byte("allocator-test-key-0123456789abc"))
	joinKeys = jointoken.NewKeys(joinKey.Public().(ed25519.PublicKey))
)

type env struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	subj events.Subjects
	pub  *events.Publisher
}

func start(t *testing.T, backend allocator.Backend, cfg allocator.Config) *env {
	t.Helper()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	js := testkit.JetStream(t, nc)
	e := &env{nc: nc, js: js, pub: events.NewPublisher(js, events.Subjects{})}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	cfg.JoinKey = joinKey
	a, err := allocator.New(cfg, nc, js, e.subj, backend, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, a.Run)
	return e
}

func match(id string, players ...string) events.Match {
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: id, Mode: "1v1", Region: "eu", Tier: "gold"}
	for i, p := range players {
		m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: "t-" + p, Players: []string{p}, Team: i})
	}
	return m
}

func TestMatchIsAssignedOnce(t *testing.T) {
	t.Parallel()
	e := start(t, local.New([]local.Target{{Server: allocator.Server{Name: "gs-1", Address: "127.0.0.1", Port: 7000}}}), allocator.Config{})
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	m := match("m1", "alice", "bob")
	for range 3 { // a matcher retrying its publish: stored once
		if err := e.pub.Match(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) >= 2 && testkit.StreamMsgs(t, e.js, e.subj.AllocationsStream()) == 0 }, "no assignments")
	time.Sleep(200 * time.Millisecond) // let any duplicate arrive before counting
	if n := len(res()); n != 2 {
		t.Fatalf("%d results for one match of 2 players", n)
	}
	for _, msg := range res() {
		r, err := events.DecodeResult(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		a := r.Assignment
		if r.Status != events.StatusAssigned || a == nil || a.Server != "gs-1" || a.Port != 7000 || a.Room != "m1" {
			t.Fatalf("result = %+v", r)
		}
		c, err := joinKeys.Verify(a.JoinToken, time.Now())
		if err != nil || c.PlayerID != r.PlayerID || c.MatchID != "m1" {
			t.Fatalf("join token of %s: %+v %v", r.PlayerID, c, err)
		}
		u, err := url.Parse(a.URL)
		if err != nil || u.Host != "127.0.0.1:7000" || u.Query().Get("token") != a.JoinToken || u.Query().Get("room") != "m1" {
			t.Fatalf("url %q", a.URL)
		}
	}
}

func TestBadMatchIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := start(t, local.New([]local.Target{{Server: allocator.Server{Name: "gs", Address: "127.0.0.1", Port: 7000}}}), allocator.Config{})
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	bad := nats.NewMsg(e.subj.Allocation("eu"))
	bad.Data = []byte(`{"match_id":"x"`)
	trace := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	bad.Header.Set(events.HeaderCorrelationID, "corr-bad")
	bad.Header.Set(events.HeaderTraceParent, trace)
	if _, err := e.js.PublishMsg(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == 1 && testkit.StreamMsgs(t, e.js, e.subj.AllocationsStream()) == 0 }, "no dead letter")
	var d events.DeadLetter
	if err := json.Unmarshal(dls()[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Source != allocator.Source || d.Subject != "allocations.eu" || !strings.Contains(d.Reason, "invalid match") {
		t.Fatalf("dead letter %+v", d)
	}
	// It keeps the flow it came with, as the matcher's do.
	if m := d.Meta(); m.CorrelationID != "corr-bad" || m.TraceParent != trace {
		t.Fatalf("dead letter's flow %+v", m)
	}
}

type flaky struct {
	failures atomic.Int32
	err      error
}

func (f *flaky) Allocate(context.Context, events.Match) (allocator.Server, error) {
	if f.failures.Add(-1) >= 0 {
		return allocator.Server{}, f.err
	}
	return allocator.Server{Name: "gs", Address: "127.0.0.1", Port: 7001}, nil
}

func TestTransientFailureIsRetried(t *testing.T) {
	t.Parallel()
	b := &flaky{err: errors.New("kubernetes: 503")}
	b.failures.Store(3)
	e := start(t, b, allocator.Config{RetryDeadline: 5 * time.Second})
	res := testkit.Collect(t, e.nc, e.subj.Result("alice"))
	if err := e.pub.Match(t.Context(), match("m2", "alice", "bob")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 1 }, "no result after retries")
	r, _ := events.DecodeResult(res()[0].Data)
	if r.Status != events.StatusAssigned {
		t.Fatalf("result %+v", r)
	}
}

func TestNoCapacityFailsPlayersClearly(t *testing.T) {
	t.Parallel()
	b := &flaky{err: allocator.ErrNoCapacity}
	b.failures.Store(1 << 30)
	e := start(t, b, allocator.Config{RetryDeadline: 300 * time.Millisecond})
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	if err := e.pub.Match(t.Context(), match("m3", "alice", "bob")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		return len(res()) == 2 && len(dls()) == 1 && testkit.StreamMsgs(t, e.js, e.subj.AllocationsStream()) == 0
	}, "players not told")
	for _, msg := range res() {
		r, _ := events.DecodeResult(msg.Data)
		if r.Status != events.StatusFailed || !strings.Contains(r.Reason, "no game server capacity") {
			t.Fatalf("result %+v", r)
		}
	}
}

type fixedCapacity struct{ free, total, servers int }

func (f fixedCapacity) Capacity(string) (events.Capacity, bool) {
	return events.Capacity{FreeRooms: f.free, TotalRooms: f.total, Servers: f.servers}, true
}

func TestReportCapacity(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	testkit.Run(t, func(ctx context.Context) error {
		return allocator.ReportCapacity(ctx, js, subj, []string{"eu", "us"}, fixedCapacity{3, 10, 2}, 50*time.Millisecond, log)
	})
	kv, err := js.KeyValue(t.Context(), subj.CapacityBucket())
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{"eu", "us"} {
		var c events.Capacity
		testkit.Eventually(t, 5*time.Second, func() bool {
			e, err := kv.Get(t.Context(), region)
			return err == nil && json.Unmarshal(e.Value(), &c) == nil
		}, "no report for %s", region)
		if c.Region != region || c.FreeRooms != 3 || c.TotalRooms != 10 || c.Servers != 2 {
			t.Fatalf("report %+v", c)
		}
	}
}

// counting is a backend that hands out a new server for every call, so a
// second allocation for one match would show.
type counting struct{ calls atomic.Int32 }

func (c *counting) Allocate(context.Context, events.Match) (allocator.Server, error) {
	n := c.calls.Add(1)
	return allocator.Server{Name: fmt.Sprintf("gs-%d", n), Address: "127.0.0.1", Port: 7000 + int(n)}, nil
}

// TestRedeliveredMatchGetsTheSameServer: the same match requested again
// after the duplicate window (a redelivery, a matcher's late retry) is not
// allocated a second time.
func TestRedeliveredMatchGetsTheSameServer(t *testing.T) {
	t.Parallel()
	b := &counting{}
	e := start(t, b, allocator.Config{})
	res := testkit.Collect(t, e.nc, e.subj.Result("alice"))
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	m := match("m-once", "alice", "bob")
	if err := e.pub.Match(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 1 }, "no assignment")
	// Publish it again under another message id: the stream's duplicate
	// window does not catch it, the allocation record must.
	msg, err := events.NewMsg(t.Context(), e.subj.Allocation("eu"), "m-once-again", m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.AllocationsStream()) == 0 }, "second request not handled")
	// Both requests are answered (two results for alice), by one server.
	testkit.Eventually(t, 5*time.Second, func() bool { return len(res()) == 2 }, "the second request was not answered: %d results, %d dead letters", len(res()), len(dls()))
	if n := b.calls.Load(); n != 1 || len(dls()) != 0 {
		t.Fatalf("backend asked %d times for one match; %d dead letters", n, len(dls()))
	}
	for _, msg := range res() {
		r, _ := events.DecodeResult(msg.Data)
		if r.Assignment == nil || r.Assignment.Server != "gs-1" {
			t.Fatalf("assignment %+v", r.Assignment)
		}
	}
}

// TestNoCapacityRequeuesWithTheOriginalWait: with Requeue, a match that
// finds no server has its tickets queued again, with their ids, skills and
// creation times, and their claims for the failed match released.
func TestNoCapacityRequeuesWithTheOriginalWait(t *testing.T) {
	t.Parallel()
	b := &flaky{err: allocator.ErrNoCapacity}
	b.failures.Store(1 << 30)
	e := start(t, b, allocator.Config{RetryDeadline: 200 * time.Millisecond, Requeue: true})
	tickets := testkit.Collect(t, e.nc, e.subj.AllTickets())
	res := testkit.Collect(t, e.nc, e.subj.Result("alice"))
	claims, err := events.NewClaims(t.Context(), e.js, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	m := match("m-full", "alice", "bob")
	created := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for i := range m.Tickets {
		m.Tickets[i].Skill = 1650 + i
		m.Tickets[i].CreatedAt = created
	}
	if lost, err := claims.ClaimAll(t.Context(), []string{"t-alice", "t-bob"}, events.MatchOwner("m-full")); err != nil || len(lost) != 0 {
		t.Fatalf("claim: %v %v", lost, err)
	}
	if err := e.pub.Match(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(tickets()) == 2 && len(res()) == 1 }, "tickets not requeued")
	for _, msg := range tickets() {
		tk, err := events.DecodeTicket(msg.Data)
		if err != nil || msg.Subject != "matchmaking.eu.gold" || !tk.CreatedAt.Equal(created) || tk.Skill < 1650 || !strings.HasPrefix(tk.TicketID, "t-") {
			t.Fatalf("requeued %s %s: %v", msg.Subject, msg.Data, err)
		}
	}
	if r, _ := events.DecodeResult(res()[0].Data); r.Status != events.StatusQueued || !strings.Contains(r.Reason, "queued again") {
		t.Fatalf("alice told %+v", r)
	}
	if owner, _ := claims.Owner(t.Context(), "t-alice"); owner != "" {
		t.Fatalf("claim kept: %q", owner)
	}
}

// TestConcurrentRequestsForOneMatchAllocateOnce: the same match requested
// many times at once (eight handlers in parallel) reaches the backend once.
func TestConcurrentRequestsForOneMatchAllocateOnce(t *testing.T) {
	t.Parallel()
	b := &slowCounting{}
	e := start(t, b, allocator.Config{Concurrency: 8})
	res := testkit.Collect(t, e.nc, e.subj.Result("alice"))
	m := match("m-race", "alice", "bob")
	for i := range 8 {
		msg, err := events.NewMsg(t.Context(), e.subj.Allocation("eu"), fmt.Sprintf("copy-%d", i), m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return len(res()) == 8 }, "not every request answered: %d", len(res()))
	if n := b.calls.Load(); n != 1 {
		t.Fatalf("backend asked %d times for one match", n)
	}
}

// slowCounting holds each allocation a while, so concurrent requests overlap.
type slowCounting struct{ calls atomic.Int32 }

func (c *slowCounting) Allocate(context.Context, events.Match) (allocator.Server, error) {
	c.calls.Add(1)
	time.Sleep(200 * time.Millisecond)
	return allocator.Server{Name: "gs-slow", Address: "127.0.0.1", Port: 7000}, nil
}

// TestAMatchAnotherRequestIsAllocatingNeverFails: while another request
// holds the match's record (an allocator that was paused or killed
// mid-allocation), this one neither allocates nor tells the players the
// match failed, however long its retries last; once the other request
// records its server, the players are assigned to that server. (The chaos
// run found players told "failed" after "assigned" before this.)
func TestAMatchAnotherRequestIsAllocatingNeverFails(t *testing.T) {
	t.Parallel()
	b := &counting{}
	e := start(t, b, allocator.Config{RetryDeadline: 200 * time.Millisecond, NakDelay: 300 * time.Millisecond})
	kv, err := e.js.KeyValue(t.Context(), e.subj.AllocationsBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(t.Context(), "m-held", fmt.Appendf(nil, `{"pending":%d}`, time.Now().UnixMilli())); err != nil {
		t.Fatal(err)
	}
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	if err := e.pub.Match(t.Context(), match("m-held", "alice", "bob")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // ten times the retry deadline
	if len(res()) != 0 || len(dls()) != 0 || b.calls.Load() != 0 {
		t.Fatalf("while another request held the match: %d results, %d dead letters, %d allocations", len(res()), len(dls()), b.calls.Load())
	}
	// The other request finishes.
	if _, err := kv.Put(t.Context(), "m-held", []byte(`{"server":{"name":"gs-9","address":"10.0.0.9","port":7009}}`)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) == 2 }, "players not assigned")
	for _, msg := range res() {
		r, _ := events.DecodeResult(msg.Data)
		if r.Status != events.StatusAssigned || r.Assignment.Server != "gs-9" {
			t.Fatalf("result %+v", r)
		}
	}
}

// TestConfigNeedsAJoinKey: without an Ed25519 private key the allocator
// cannot sign join tokens, and says so with the other problems (its
// Backfill's among them).
func TestConfigNeedsAJoinKey(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]allocator.Config{
		"none":       {},
		"wrong size": {JoinKey: ed25519.PrivateKey("0123456789abcdef0123")},
	} {
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "join key") {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
	backfill := allocator.BackfillConfig{Every: time.Second, MinInterval: time.Second, Turnover: 4}
	if err := (&allocator.Config{JoinKey: joinKey, Backfill: backfill}).Validate(); err != nil {
		t.Fatalf("a valid config: %v", err)
	}
	// The assigner's fills are held to the turnover: none is refused.
	backfill.Turnover = -1
	if err := (&allocator.Config{JoinKey: joinKey, Backfill: backfill}).Validate(); err == nil || !strings.Contains(err.Error(), "-backfill-turnover") {
		t.Fatalf("a negative turnover: %v", err)
	}
}
