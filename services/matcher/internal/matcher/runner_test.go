package matcher

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
