package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestShardConsumersRefuseLongPulls: a pull request on a shard consumer
// that asks to live longer than events.PoolMaxPullExpiry (an older
// matcher's, a tool's: nats.go's Fetch waits 30 s by default) is refused
// by the server, so no process cut off keeps taking a shard's tickets
// past the soonest takeover on a pull it made before the cut; the
// matcher's own pulls are taken. A consumer provisioned before the bound
// existed gets it.
func TestShardConsumersRefuseLongPulls(t *testing.T) {
	t.Parallel()
	topo := events.Topology{}
	js := provisioned(t, topo)
	ctx := t.Context()
	sc := topo.Consumers()[0]
	if !strings.HasPrefix(sc.Config.Durable, "tickets-") {
		t.Fatalf("first consumer %s is not a shard's", sc.Config.Durable)
	}
	old := sc.Config
	old.MaxRequestExpires = 0
	if _, err := js.UpdateConsumer(ctx, sc.Stream, old); err != nil {
		t.Fatal(err)
	}
	if err := events.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, sc.Stream, sc.Config.Durable)
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.CachedInfo().Config.MaxRequestExpires; got != events.PoolMaxPullExpiry {
		t.Fatalf("MaxRequestExpires %s, want %s", got, events.PoolMaxPullExpiry)
	}
	long, err := cons.Fetch(1, jetstream.FetchMaxWait(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range long.Messages() {
	}
	if err := long.Error(); err == nil || !strings.Contains(err.Error(), "MaxRequestExpires") {
		t.Fatalf("a 30 s pull: %v, want it refused for MaxRequestExpires", err)
	}
	ok, err := cons.Fetch(1, jetstream.FetchMaxWait(events.PoolPullExpiry))
	if err != nil {
		t.Fatal(err)
	}
	for range ok.Messages() {
	}
	if err := ok.Error(); err != nil {
		t.Fatalf("the matcher's pull (%s): %v", events.PoolPullExpiry, err)
	}
}
