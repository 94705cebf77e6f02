package matcher

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestStoppedRunnerWaitsForItsCopyReads: a shard is handed back while a
// read of a copy's claim (a matched notice named its ticket) is under
// way, bounded by PublishTimeout (the claims bucket never answers for
// that ticket). The read ends before the runner counts as stopped, as
// its match-function calls and queue writes do: nothing of a shard
// outlives its owner.
func TestStoppedRunnerWaitsForItsCopyReads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := &mutedClaim{bucket: e.subj.ClaimsBucket(), key: "lo", reading: make(chan struct{}, 1)}
	w := e.startWorker(t, Config{PublishTimeout: 2 * time.Second}, func(w *Worker) { c.JetStream = w.js; w.js = c })
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"lo","player_id":"lo","skill":1800}`)
	pub := events.NewPublisher(e.js, e.subj)
	notice := events.MatchedNotice{TicketID: "lo", MatchID: "m1", HomeRegion: "eu", HomeTier: "gold"}
	// Until the runner holds the shard and reads lo's claim (at the
	// notice, or when lo comes after it).
	for read := false; !read; {
		if err := pub.MatchedNotice(t.Context(), "eu", "gold", notice); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.reading:
			read = true
		case <-time.After(100 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal("lo's claim never read")
		}
	}

	w.stop(t)
	if n := c.reads.Load(); n != 0 {
		t.Errorf("%d reads of a copy's claim outlived their runner", n)
	}
}

// mutedClaim is a JetStream whose claims bucket (bucket) never answers a
// read of key: a Get of it waits until its context ends. reading hears
// of each such Get begun; reads counts those not returned yet.
type mutedClaim struct {
	jetstream.JetStream
	bucket  string
	key     string
	reading chan struct{}
	reads   atomic.Int64
}

// WrapKeyValue mutes the claims bucket, bound with its leader reads
// (events.KeyValueWrapper).
func (c *mutedClaim) WrapKeyValue(kv jetstream.KeyValue) jetstream.KeyValue {
	if kv.Bucket() != c.bucket {
		return kv
	}
	return mutedKV{KeyValue: kv, c: c}
}

type mutedKV struct {
	jetstream.KeyValue
	c *mutedClaim
}

func (kv mutedKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if key != kv.c.key {
		return kv.KeyValue.Get(ctx, key)
	}
	kv.c.reads.Add(1)
	defer kv.c.reads.Add(-1)
	select {
	case kv.c.reading <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}
