package allocator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
)

// TestAMatchIsNeverDroppedHoweverOftenItIsNakked (#19): a match whose
// record another request holds (an allocator cut off from NATS
// mid-allocation) is nakked on every delivery, well past the ten the
// consumer once allowed, and told nothing; once the other request
// records its server, the next delivery assigns it, once, and is acked.
// (Before, the consumer stopped at ten; then the tenth delivery was held
// in the allocator, retried past AckWait while the server delivered the
// match again, each delivery starting another retry: duplicates.)
func TestAMatchIsNeverDroppedHoweverOftenItIsNakked(t *testing.T) {
	t.Parallel()
	const many = 12
	b := &counting{}
	e := start(t, b, allocator.Config{RetryDeadline: 50 * time.Millisecond, NakDelay: 20 * time.Millisecond})
	kv, err := e.js.KeyValue(t.Context(), e.subj.AllocationsBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(t.Context(), "m-held", fmt.Appendf(nil, `{"pending":%d}`, time.Now().UnixMilli())); err != nil {
		t.Fatal(err)
	}
	cons, err := e.js.Consumer(t.Context(), e.subj.AllocationsStream(), events.ConsumerAllocator)
	if err != nil {
		t.Fatal(err)
	}
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	if err := e.pub.Match(t.Context(), match("m-held", "alice", "bob")); err != nil {
		t.Fatal(err)
	}
	// The consumer's delivery sequence counts every delivery, the
	// first and each after a nak: the stream holds only this match.
	delivered := func() uint64 {
		info, err := cons.Info(t.Context())
		if err != nil {
			return 0
		}
		return info.Delivered.Consumer
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return delivered() >= many }, "never delivered %d times", many)
	// Each of those deliveries was nakked (else the next would not have
	// come), and the results of any would have reached this connection
	// before the delivery that followed it.
	if n := len(res()); n != 0 {
		t.Fatalf("%d results while another request held the match", n)
	}
	// The other request finishes.
	if _, err := kv.Put(t.Context(), "m-held", []byte(`{"server":{"name":"gs-9","address":"10.0.0.9","port":7009}}`)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(res()) >= 2 }, "players never told")
	testkit.Eventually(t, 10*time.Second, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	}, "the match was never acked")
	// Acked: no delivery follows. Every result was sent to this
	// connection before the ack, so before a sentinel published now.
	sentinel := e.subj.Result("sentinel")
	if err := e.nc.Publish(sentinel, nil); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { r := res(); return len(r) > 0 && r[len(r)-1].Subject == sentinel }, "sentinel never came")
	if n := len(res()) - 1; n != 2 {
		t.Fatalf("%d results for a match of two players", n)
	}
	for _, msg := range res()[:2] {
		r, _ := events.DecodeResult(msg.Data)
		if r.Status != events.StatusAssigned || r.Assignment.Server != "gs-9" {
			t.Fatalf("result %+v", r)
		}
	}
	if n := b.calls.Load(); n != 0 {
		t.Fatalf("backend asked %d times for a match another request allocated", n)
	}
}
