package matcher

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// stuckReset is a JetStream whose reset of one stream's consumers fails
// while stuck is set, as a consumer with no leader answers none (a
// partition): "reset ...: context deadline exceeded".
type stuckReset struct {
	jetstream.JetStream
	stream string
	stuck  *atomic.Bool
}

func (s stuckReset) ResetConsumer(ctx context.Context, stream, name string) (*jetstream.ConsumerResetResponse, error) {
	if stream == s.stream && s.stuck.Load() {
		return nil, context.DeadlineExceeded
	}
	return s.JetStream.ResetConsumer(ctx, stream, name)
}

// backfillsStuck is a shard owner of eu.gold whose backfills consumer
// cannot be reset while stuck is set: its start retries after the
// tickets and offers consumers are consuming.
func (e *env) backfillsStuck(t *testing.T) (*Worker, *atomic.Bool) {
	t.Helper()
	stuck := &atomic.Bool{}
	stuck.Store(true)
	w := e.shardOwner(t, testkit.Connect(t, e.srv), Config{PublishTimeout: 300 * time.Millisecond},
		func(w *Worker) { w.js = stuckReset{JetStream: w.js, stream: e.subj.BackfillsStream(), stuck: stuck} })
	f := w.runner(euGold).feed
	testkit.Eventually(t, 10*time.Second, func() bool { return f.resets[0].Load() == 1 && f.resets[1].Load() == 1 },
		"the tickets and offers consumers never started")
	return w, stuck
}

// TestTicketsServedWhileABackfillsConsumerCannotStart: the owner's
// tickets consumer starts, its backfills consumer cannot be reset (no
// leader) and start retries. The tickets delivered meanwhile are served
// at once, not left in an inbox nobody reads (where a stop's naks may be
// lost, leaving them to the pool's AckWait); once the backfills consumer
// starts too, the shard goes on as usual.
func TestTicketsServedWhileABackfillsConsumerCannotStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, stuck := e.backfillsStuck(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"b","player_id":"bob","skill":1801}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 },
		"alice and bob not matched while the backfills consumer cannot start")
	f := w.runner(euGold).feed
	if n := f.resets[2].Load(); n != 0 {
		t.Fatalf("the backfills consumer was reset %d times while stuck", n)
	}

	stuck.Store(false)
	testkit.Eventually(t, 10*time.Second, func() bool { return f.resets[2].Load() == 1 }, "the backfills consumer never started")
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"c","player_id":"carol","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d","player_id":"dave","skill":1801}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 2 }, "carol and dave not matched once started")
}

// TestStopWhileABackfillsConsumerCannotStart: the owner stops while its
// start still retries, with a ticket its tickets consumer delivered. It
// comes back to the next owner at once, none left pending to the pool's
// AckWait, and no consumer is started after the stop.
func TestStopWhileABackfillsConsumerCannotStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w, stuck := e.backfillsStuck(t)
	const n = 1
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	cons, err := e.js.Consumer(t.Context(), e.subj.TicketsStream(), events.ShardConsumer("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		ci, err := cons.Info(t.Context())
		return err == nil && ci.NumAckPending == n
	}, "the tickets never delivered to the owner")
	f := w.runner(euGold).feed

	w.Release(euGold)
	stuck.Store(false) // a start after the stop would reset it now
	comeBack(t, cons, n, 10*time.Second)
	if r := f.resets[2].Load(); r != 0 {
		t.Fatalf("the backfills consumer was reset %d times after the stop", r)
	}
}
