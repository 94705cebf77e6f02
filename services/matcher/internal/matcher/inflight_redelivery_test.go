package matcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// heldMatches is a JetStream whose matches bucket (bucket) stores no
// match record: a commit's Put waits until release is closed (or its
// context ends) and then fails, as with NATS away. putting hears of each
// Put begun; puts counts them.
type heldMatches struct {
	jetstream.JetStream
	bucket  string
	putting chan struct{}
	release chan struct{}
	puts    atomic.Int64
}

// WrapKeyValue holds the matches bucket, bound with its leader reads
// (events.KeyValueWrapper).
func (h *heldMatches) WrapKeyValue(kv jetstream.KeyValue) jetstream.KeyValue {
	if kv.Bucket() != h.bucket {
		return kv
	}
	return heldMatchesKV{KeyValue: kv, h: h}
}

type heldMatchesKV struct {
	jetstream.KeyValue
	h *heldMatches
}

func (kv heldMatchesKV) Put(ctx context.Context, _ string, _ []byte) (uint64, error) {
	kv.h.puts.Add(1)
	select {
	case kv.h.putting <- struct{}{}:
	default:
	}
	select {
	case <-kv.h.release:
	case <-ctx.Done():
	}
	return 0, errors.New("matches bucket held by the test")
}

// TestRedeliveryDuringACommitIsNotLost: alice's and bob's tickets are in
// a match whose commit is under way when the shard's consumer is reset
// (as after a leader change): both come again while their commit is in
// flight, and the server honours no nak of their earlier deliveries any
// more (their delivery sequences are past the consumer's new ones). The
// commit fails (NATS away), the tickets go back to the pool, and the
// owner stops. Every ticket must come back to the next consumer within
// the naks' delay, none left to the pool's AckWait (an hour): alice and
// bob, and carol and dave, who waited in the pool (carol redelivered by
// the reset too).
func TestRedeliveryDuringACommitIsNotLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	held := &heldMatches{bucket: e.subj.MatchesBucket(), putting: make(chan struct{}, 1), release: make(chan struct{})}
	w := e.shardOwner(t, testkit.Connect(t, e.srv), Config{PublishTimeout: 20 * time.Second,
		RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"},
			{"name":"2v2","teams":2,"team_size":2,"max_wait":"1m"}]`)},
		func(w *Worker) { held.JetStream = w.js; w.js = held })
	var once sync.Once
	release := func() { once.Do(func() { close(held.release) }) }
	t.Cleanup(release) // before the owner stops
	r := w.runner(euGold)
	cons, err := e.js.Consumer(t.Context(), e.subj.TicketsStream(), events.ShardConsumer("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	ticket := func(id, player, mode string) {
		e.pub(t, e.subj.Ticket("eu", "gold"), fmt.Sprintf(`{"ticket_id":%q,"player_id":%q,"mode":%q,"skill":1800}`, id, player, mode))
	}

	// A consumer that ran a while: the deliveries to come have delivery
	// sequences a reset starts far below. Dead-lettered, these are acked.
	const before = 100
	for range before {
		e.pub(t, e.subj.Ticket("eu", "gold"), `not json`)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		ci, err := cons.Info(t.Context())
		return err == nil && ci.AckFloor.Stream >= before
	}, "bad tickets never acked")
	ticket("tc", "carol", "2v2")
	testkit.Eventually(t, 10*time.Second, func() bool { return r.waiting() == 1 }, "carol never pooled")
	ticket("ta", "alice", "1v1")
	ticket("tb", "bob", "1v1")
	select {
	case <-held.putting:
	case <-time.After(10 * time.Second):
		t.Fatal("alice and bob never matched")
	}

	// The reset: alice and bob (in the commit) and carol come again; dave,
	// after them, shows they were all taken in.
	r.feed.flag(1 << 0)
	testkit.Eventually(t, 10*time.Second, func() bool { return r.feed.resets[0].Load() >= 2 }, "the consumer was never reset")
	ticket("td", "dave", "2v2")
	testkit.Eventually(t, 10*time.Second, func() bool { return r.waiting() == 2 }, "dave never pooled")

	release() // the commit fails: alice and bob back to the pool, matched and failing again
	testkit.Eventually(t, 10*time.Second, func() bool { return held.puts.Load() >= 2 }, "alice and bob never matched again")
	w.Release(euGold)

	got := map[string]bool{}
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < 4 && time.Now().Before(deadline) {
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var tk struct {
				TicketID string `json:"ticket_id"`
			}
			if json.Unmarshal(m.Data(), &tk) == nil {
				got[tk.TicketID] = true
			}
			_ = m.Ack()
		}
	}
	for _, id := range []string{"ta", "tb", "tc", "td"} {
		if !got[id] {
			t.Errorf("ticket %s never came back after its owner stopped: it waits out the pool's AckWait", id)
		}
	}
}
