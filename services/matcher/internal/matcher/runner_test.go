package matcher

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestStoppedRunnerLeavesNothingRunning: a shard is handed back while a
// call to its mode's match function and a write of its queue figures
// are under way, each bounded by a minute (the function never answers;
// the queue bucket never takes a write). Both end before the runner
// counts as stopped: nothing of a shard outlives its owner.
//
// Not parallel: it looks at every goroutine of the test binary.
func TestStoppedRunnerLeavesNothingRunning(t *testing.T) {
	e := newEnv(t)
	asked := make(chan struct{}, 1)
	sub, err := testkit.Connect(t, e.srv).Subscribe(e.subj.MatchFunction("mute"), func(*nats.Msg) {
		select {
		case asked <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	q := &stuckQueue{bucket: e.subj.QueueBucket(), putting: make(chan struct{}, 1)}
	w := e.startWorker(t, Config{PublishTimeout: time.Minute, RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"5m",
		"match_function":{"service":"mute","timeout":"1m","on_failure":"wait"}}]`)},
		func(w *Worker) { q.JetStream = w.js; w.js = q })
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"b","player_id":"bob","skill":1801}`)
	for what, c := range map[string]chan struct{}{"match function called": asked, "queue figures written": q.putting} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: never", what)
		}
	}

	w.stop(t) // every shard released: its runner stopped
	if n := q.puts.Load(); n != 0 {
		t.Errorf("%d queue-figure writes outlived their runner", n)
	}
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "matcher.(*runner).callFunction") {
			t.Errorf("a match-function call outlived its runner:\n%s", g)
		}
	}
}

// stuckQueue is a JetStream whose queue bucket (bucket) takes no write:
// a Put waits until its context ends. putting hears of each Put begun;
// puts counts those not returned yet.
type stuckQueue struct {
	jetstream.JetStream
	bucket  string
	putting chan struct{}
	puts    atomic.Int64
}

func (q *stuckQueue) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := q.JetStream.KeyValue(ctx, bucket)
	if err != nil || bucket != q.bucket {
		return kv, err
	}
	return stuckKV{KeyValue: kv, q: q}, nil
}

type stuckKV struct {
	jetstream.KeyValue
	q *stuckQueue
}

func (kv stuckKV) Put(ctx context.Context, _ string, _ []byte) (uint64, error) {
	kv.q.puts.Add(1)
	defer kv.q.puts.Add(-1)
	select {
	case kv.q.putting <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// blockedPlayers is a JetStream whose players bucket answers nothing: a
// take waits until its context ends, so a runner taking tickets in
// stalls with its inbox and its consumers' buffers full.
type blockedPlayers struct {
	jetstream.JetStream
	bucket string
}

func (b blockedPlayers) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := b.JetStream.KeyValue(ctx, bucket)
	if err != nil || bucket != b.bucket {
		return kv, err
	}
	return blockedKV{kv}, nil
}

type blockedKV struct{ jetstream.KeyValue }

func (blockedKV) Get(ctx context.Context, _ string) (jetstream.KeyValueEntry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (blockedKV) Create(ctx context.Context, _ string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func (blockedKV) Update(ctx context.Context, _ string, _ []byte, _ uint64) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestStoppingOwnerNaksEverythingItHolds: an owner whose shard is taken
// over (a new owner reset the consumer already) stops while tickets wait
// in its inbox and in its consumer's buffer, not yet taken in. Every one
// is nakked, so the next owner gets them all at once, none left to the
// pool's AckWait.
func TestStoppingOwnerNaksEverythingItHolds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 2000
	w := e.shardOwner(t, testkit.Connect(t, e.srv), Config{PublishTimeout: time.Second},
		func(w *Worker) { w.js = blockedPlayers{JetStream: w.js, bucket: e.subj.PlayersBucket()} })
	for i := range n {
		e.pub(t, e.subj.Ticket("eu", "gold"), fmt.Sprintf(`{"ticket_id":"t%d","player_id":"p%d","skill":1800}`, i, i))
	}
	cons, err := e.js.Consumer(t.Context(), e.subj.TicketsStream(), events.ShardConsumer("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	// Stalled: at least its inbox and a pull's worth delivered to it.
	testkit.Eventually(t, 10*time.Second, func() bool {
		ci, err := cons.Info(t.Context())
		return err == nil && ci.NumAckPending >= maxAdmitting+cap(w.runner(euGold).inbox)+512
	}, "the owner never stalled")

	w.Release(euGold)

	// The next owner, which reset the consumer before this one stopped,
	// consumes on: every ticket comes to it, within the naks' delay.
	comeBack(t, cons, n, 20*time.Second)
}

// comeBack fetches, as the next owner, until n tickets of cons came back
// to it (each acked) or within has passed: the others wait out the
// pool's AckWait.
func comeBack(t *testing.T, cons jetstream.Consumer, n int, within time.Duration) {
	t.Helper()
	got := map[uint64]bool{}
	deadline := time.Now().Add(within)
	for len(got) < n && time.Now().Before(deadline) {
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			meta, _ := m.Metadata()
			got[meta.Sequence.Stream] = true
			_ = m.Ack()
		}
	}
	if len(got) < n {
		t.Fatalf("%d of %d tickets came back to the next owner; the others wait out the AckWait", len(got), n)
	}
}
