package matcher

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

var euGold = events.Shard{Region: "eu", Tier: "gold"}

// shardOwner is a worker that owns eu.gold and nothing else, with no
// lease: the test decides when it stops (Release). nc is its connection.
func (e *env) shardOwner(t *testing.T, nc *nats.Conn, cfg Config, opts ...func(*Worker)) *Worker {
	t.Helper()
	cfg.Sweep = 50 * time.Millisecond
	w, err := New(cfg, testkit.JetStream(t, nc), e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(w)
	}
	if err := w.bindState(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Acquire(context.Background(), euGold)
	t.Cleanup(func() { w.Release(euGold) })
	return w
}

// silenced reports whether consumer i's heartbeats were missed long
// enough that a reset is due.
func (f *feed) silenced(i int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.silences[i].reset.IsZero()
}

// consumingAll reports whether the start consumed every consumer.
func (f *feed) consumingAll() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cc := range f.ccs {
		if cc == nil {
			return false
		}
	}
	return true
}

func (w *Worker) runner(s events.Shard) *runner {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.runners[s]
}

// TestNakLostAcrossAReconnectIsRedelivered: the owner expires a ticket
// while its connection is cut; the claim times out and the ticket is
// nakked, but the nak never reaches the server (the connection is closed
// with it held). The server counts the ticket delivered and would give
// it again only after the pool's AckWait, an hour, to an owner that kept
// its shard. Once reconnected, the owner resets its consumers and the
// ticket is expired and its player told at once.
func TestNakLostAcrossAReconnectIsRedelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := testkit.NewLink(t, e.srv.Addr().String())
	nc := testkit.ConnectURL(t, p.URL(), nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	var ahead atomic.Int64
	w := e.shardOwner(t, nc, Config{PublishTimeout: 300 * time.Millisecond,
		RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]`)},
		func(w *Worker) { w.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) } })
	told := testkit.Collect(t, e.nc, e.subj.Result("alice"))
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.runner(euGold).waiting() == 1 }, "alice never pooled")

	p.Cut(testkit.Both)
	ahead.Store(int64(2 * time.Minute)) // the next sweep expires alice, and cannot claim her
	testkit.Eventually(t, 10*time.Second, func() bool { return w.runner(euGold).waiting() == 0 }, "alice never expired")
	p.Drop() // the nak the proxy held is lost; the client reconnects
	p.Heal()

	testkit.Eventually(t, 15*time.Second, func() bool {
		for _, m := range told() {
			if r, err := events.DecodeResult(m.Data); err == nil && r.Status == events.StatusExpired {
				return true
			}
		}
		return false
	}, "alice never told she expired: her ticket waits out the AckWait")
}

// TestCutOwnerStopsTakingTicketsBeforeTakeover: a worker's connection
// hangs (held, not closed); the server still counts its pull requests.
// Another worker takes its shards over; tickets published after that go
// to the new owner and are matched, not to the cut owner's old pull
// requests (where they would wait out the pool's AckWait).
func TestCutOwnerStopsTakingTicketsBeforeTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := testkit.NewLink(t, e.srv.Addr().String())
	cfg := Config{Regions: events.Regions{"eu"}}
	w1 := e.startWorkerOn(t, testkit.ConnectURL(t, p.URL()), cfg, "w1")
	t.Cleanup(func() { p.Heal() }) // before w1 stops
	cons, err := e.js.Consumer(t.Context(), e.subj.TicketsStream(), events.ShardConsumer("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		ci, err := cons.Info(t.Context())
		return w1.w.runner(euGold) != nil && err == nil && ci.NumWaiting > 0
	}, "w1 never consumed eu.gold")

	p.Cut(testkit.Both)
	w2 := e.startWorkerOn(t, testkit.Connect(t, e.srv), cfg, "w2")
	testkit.Eventually(t, 15*time.Second, func() bool { return w2.w.runner(euGold) != nil }, "w2 never took eu.gold over")
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"b","player_id":"bob","skill":1801}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 },
		"alice and bob not matched: the cut owner's pull requests took them")
}

// startWorkerOn is startWorker on connection nc, named id.
func (e *env) startWorkerOn(t *testing.T, nc *nats.Conn, cfg Config, id string) *worker {
	t.Helper()
	cfg.Sweep = 50 * time.Millisecond
	cfg.StraySweep = 100 * time.Millisecond
	cfg.WorkerID = id
	w, err := New(cfg, testkit.JetStream(t, nc), e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &worker{w: w, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- w.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// TestDeliveryLostWhileHeartbeatsMissedIsRedelivered: while the owner's
// connection is cut, a delivery of its shard goes where it is never
// answered (here a pull request of the test's that never acks, as a
// delivery lost on a route). The owner hears no heartbeat meanwhile, for
// silenceReset at least; healed, it resets its consumer, and the ticket
// comes back and is matched at once rather than after the pool's AckWait.
func TestDeliveryLostWhileHeartbeatsMissedIsRedelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := testkit.NewLink(t, e.srv.Addr().String())
	w := e.shardOwner(t, testkit.ConnectURL(t, p.URL()), Config{})
	cons, err := e.js.Consumer(t.Context(), e.subj.TicketsStream(), events.ShardConsumer("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	waiting := func() int {
		ci, err := cons.Info(t.Context())
		if err != nil {
			return -1
		}
		return ci.NumWaiting
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return waiting() > 0 }, "the owner never consumed")

	p.Cut(testkit.Both)
	testkit.Eventually(t, 10*time.Second, func() bool { return waiting() == 0 }, "the owner's pull requests never expired")
	lost, err := e.nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	delivered := pullInto(t, e.nc, e.subj.TicketsStream(), events.ShardConsumer("eu", "gold"), lost)
	testkit.Eventually(t, 10*time.Second, func() bool { return waiting() >= 1 }, "the test's pull request never waited")
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	if err := delivered(10 * time.Second); err != nil {
		t.Fatalf("alice's delivery: %v", err)
	}
	_ = lost.Unsubscribe()
	testkit.Eventually(t, 10*time.Second, func() bool { return w.runner(euGold).feed.silenced(0) },
		"heartbeats not missed for silenceReset")
	p.Heal()

	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"b","player_id":"bob","skill":1801}`)
	testkit.Eventually(t, 15*time.Second, func() bool { return len(allocs()) == 1 },
		"alice and bob not matched: alice's lost delivery waits out the AckWait")
}

// TestConsumerLeaderChangeRecoversALostDelivery: on a three-node
// cluster, a delivery of the owner's shard is lost (here taken by a pull
// request of the test's that never acks), then the consumer's leader
// changes. The owner hears of the change, resets its consumer once the
// new leader answers, and the ticket comes back and is matched at once
// rather than after the pool's AckWait.
func TestConsumerLeaderChangeRecoversALostDelivery(t *testing.T) {
	t.Parallel()
	c := testkit.RunCluster(t, 3)
	nc := testkit.ConnectURL(t, c.URLs())
	js := testkit.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e := &env{srv: c.Servers[0], nc: nc, js: js}
	if err := events.Provision(ctx, js, events.Topology{Subjects: e.subj, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	// The owner's connection goes through a link, so that its pull
	// requests can be let expire (a cut) before the test's goes in.
	p := testkit.NewLink(t, c.Servers[0].Addr().String())
	e.shardOwner(t, testkit.ConnectURL(t, p.URL()), Config{})
	stream, name := e.subj.TicketsStream(), events.ShardConsumer("eu", "gold")
	cons, err := js.Consumer(ctx, stream, name)
	if err != nil {
		t.Fatal(err)
	}
	waiting := func() int {
		ci, err := cons.Info(ctx)
		if err != nil {
			return -1
		}
		return ci.NumWaiting
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return waiting() > 0 }, "the owner never consumed")

	// Alone waiting, the test's pull request takes alice's delivery.
	p.Cut(testkit.Both)
	testkit.Eventually(t, 10*time.Second, func() bool { return waiting() == 0 }, "the owner's pull requests never expired")
	lost, err := nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	delivered := pullInto(t, nc, stream, name, lost)
	testkit.Eventually(t, 10*time.Second, func() bool { return waiting() >= 1 }, "the test's pull request never waited")
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	if err := delivered(5 * time.Second); err != nil {
		t.Fatalf("alice's delivery did not go astray: %v", err)
	}
	_ = lost.Unsubscribe()
	p.Heal()
	testkit.Eventually(t, 10*time.Second, func() bool { return waiting() > 0 }, "the owner never consumed again")

	if _, err := nc.Request(fmt.Sprintf("$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s", stream, name), nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	allocs := testkit.Collect(t, nc, e.subj.AllAllocations())
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"b","player_id":"bob","skill":1801}`)
	testkit.Eventually(t, 20*time.Second, func() bool { return len(allocs()) == 1 },
		"alice and bob not matched: alice's lost delivery waits out the AckWait")
}

// TestOnlyALeaderChangeOrALongSilenceResetsAConsumer: a reset makes the
// server drop the acks in flight and delivers everything unacked again,
// so a loaded server that misses a heartbeat now and then must not cost
// a reset each time. A leader change or a deleted consumer resets at
// once; missed heartbeats only once the consumer was silent for
// silenceReset, and then at most once per silenceResetGap.
func TestOnlyALeaderChangeOrALongSilenceResetsAConsumer(t *testing.T) {
	t.Parallel()
	var at time.Time
	f := &feed{specs: make([]consumerSpec, 3), silences: make([]silence, 3),
		log: slog.New(slog.NewTextHandler(testLog(), nil)), wake: make(chan struct{}, 1), now: func() time.Time { return at }}
	at = time.Unix(1000, 0)
	due := func(what string, i int, err error, want bool) {
		t.Helper()
		f.consumeErr(i, err)
		got := f.suspect.Swap(0)&(1<<i) != 0
		if got != want {
			t.Fatalf("%s at +%s: reset due %v, want %v", what, at.Sub(time.Unix(1000, 0)), got, want)
		}
	}
	due("a leader change", 0, jetstream.ErrConsumerLeadershipChanged, true)
	due("a deleted consumer", 1, jetstream.ErrConsumerDeleted, true)
	// Missed heartbeats come every 2 heartbeats (pullExpiry) while silent.
	for at.Before(time.Unix(1000, 0).Add(silenceReset - pullExpiry)) {
		due("a missed heartbeat", 0, jetstream.ErrNoHeartbeat, false)
		at = at.Add(pullExpiry)
	}
	due("a heartbeat missed since silenceReset", 0, jetstream.ErrNoHeartbeat, true)
	for range 5 {
		at = at.Add(pullExpiry)
		due("a silence going on after its reset", 0, jetstream.ErrNoHeartbeat, false)
	}
	f.heard(0) // a delivery ends the silence
	at = at.Add(silenceResetGap)
	due("a new silence's first missed heartbeat", 0, jetstream.ErrNoHeartbeat, false)
	// Short silences apart, as a loaded server's: never one long silence.
	for range 10 {
		at = at.Add(3 * pullExpiry)
		due("a missed heartbeat after a heartbeat heard", 2, jetstream.ErrNoHeartbeat, false)
	}
}

// TestNoResetIsHeldByAHungConnection: the owner's connection hangs (a
// cut) while one of its consumers is suspect (a leader change heard just
// before). A reset it tried meanwhile would wait in the connection and
// reach the server at the heal, when another owner may consume the shard
// already, and reset that owner's consumer. The owner asks the consumer
// first, so the server gets one reset, sent after the heal.
func TestNoResetIsHeldByAHungConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := testkit.NewLink(t, e.srv.Addr().String())
	w := e.shardOwner(t, testkit.ConnectURL(t, p.URL()), Config{PublishTimeout: 200 * time.Millisecond})
	f := w.runner(euGold).feed
	// Every consumer, not the first only: a start still under way when
	// the cut comes retries until the heal, and no reset is tried before
	// it ends (a loaded CI machine cut between the first and the third).
	testkit.Eventually(t, 10*time.Second, f.consumingAll, "the owner never consumed")
	sent, err := e.nc.SubscribeSync(fmt.Sprintf("$JS.API.CONSUMER.RESET.%s.%s", e.subj.TicketsStream(), events.ShardConsumer("eu", "gold")))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	p.Cut(testkit.Both)
	tries := f.tries.Load()
	f.consumeErr(0, jetstream.ErrConsumerLeadershipChanged)
	testkit.Eventually(t, 20*time.Second, func() bool { return f.tries.Load() >= tries+3 }, "the owner tried no resets")
	p.Heal()
	testkit.Eventually(t, 10*time.Second, func() bool { return f.resets[0].Load() == 2 }, "the owner never reset after the heal")
	// What the cut held reached the server before the owner's reset.
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := sent.Pending(); n != 1 {
		t.Fatalf("the server got %d resets of the consumer after the cut, want 1", n)
	}
}

// pullInto keeps a pull request of one message waiting on consumer name
// for inbox (a delivery there is never answered, as one lost on a
// route), made anew each events.PoolPullExpiry (the consumers take pulls
// of at most events.PoolMaxPullExpiry) until a delivery came or the test
// ended. delivered waits up to d for that delivery, passing over the
// server's notices that a pull expired.
func pullInto(t *testing.T, nc *nats.Conn, stream, name string, inbox *nats.Subscription) (delivered func(d time.Duration) error) {
	t.Helper()
	next := fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream, name)
	req := fmt.Sprintf(`{"batch":1,"expires":%d}`, events.PoolMaxPullExpiry.Nanoseconds())
	pull := func() {
		if err := nc.PublishRequest(next, inbox.Subject, []byte(req)); err != nil {
			t.Error(err)
		}
	}
	pull()
	got := make(chan struct{})
	go func() {
		tick := time.NewTicker(events.PoolPullExpiry)
		defer tick.Stop()
		for {
			select {
			case <-t.Context().Done():
				return
			case <-got:
				return
			case <-tick.C:
				pull()
			}
		}
	}()
	return func(d time.Duration) error {
		for end := time.Now().Add(d); ; {
			m, err := inbox.NextMsg(time.Until(end))
			if err != nil {
				return err
			}
			if m.Header.Get("Status") == "" { // a delivery, not a notice
				close(got)
				return nil
			}
		}
	}
}
