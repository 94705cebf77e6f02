package allocator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// forged are n requests, for rooms no allocation record names, that
// server shows at poll: new match ids every poll.
func forged(server string, poll, n int) []ShownBackfill {
	out := make([]ShownBackfill, n)
	for i := range out {
		id := fmt.Sprintf("forged-%d-%d", poll, i)
		out[i] = ShownBackfill{Backfill: play.Backfill{MatchID: id, Ask: 1, Seats: []int{1, 1}}, Server: Server{Name: server}}
	}
	return out
}

// TestAHostileServerCostsABoundedLook: gs-2 shows 200 requests for rooms
// it does not run, new ones every poll, before gs-1's request for r1.
// Each poll looks up (a read of the allocation records) at most
// looksPerServer of gs-2's; r1's is published at the first poll. Once
// gs-2 has maxRefusedPerServer refusals remembered (all within
// askAgain), its requests are passed over until they end: refused holds
// no more, and it costs no more looks.
func TestAHostileServerCostsABoundedLook(t *testing.T) {
	t.Parallel()
	e := newPromiseEnv(t)
	published := testkit.Collect(t, e.js.Conn(), e.subj.AllBackfills())
	src := &showing{reqs: []play.Backfill{{MatchID: "r1", Ask: 1, Seats: []int{0, 1}}}}
	rq := newRequester(&rooms{matches: e.matches, src: src, records: e.recs, turnover: backfillDefaults.Turnover}, events.NewPublisher(e.js, e.subj), 5*time.Second, e.recs.log, e.clock)
	refused := rq.outcomes.WithLabelValues("refused_server")
	if 20*looksPerServer < refusedPerServer {
		t.Fatal("20 polls do not reach refusedPerServer")
	}
	for poll := range 20 {
		src.mu.Lock()
		src.others = forged("gs-2", poll, 200)
		src.mu.Unlock()
		rq.poll(t.Context())
		if poll == 0 {
			if n := testutil.ToFloat64(refused); n != looksPerServer {
				t.Fatalf("first poll: %v of gs-2's requests looked up, want %d", n, looksPerServer)
			}
			testkit.Eventually(t, 5*time.Second, func() bool { return len(published()) == 1 }, "r1 not published at the first poll")
		}
		e.wait(time.Second)
	}
	if n := testutil.ToFloat64(refused); n != refusedPerServer {
		t.Fatalf("20 polls: %v of gs-2's requests looked up, want %d (then passed over)", n, refusedPerServer)
	}
	if len(rq.refused) != refusedPerServer {
		t.Fatalf("%d refusals remembered, want %d", len(rq.refused), refusedPerServer)
	}
	e.wait(askAgain)
	src.mu.Lock()
	src.others = forged("gs-2", 99, 200)
	src.mu.Unlock()
	rq.poll(t.Context())
	if n := testutil.ToFloat64(refused); n != refusedPerServer+looksPerServer || len(rq.refused) != looksPerServer {
		t.Fatalf("after askAgain: %v looked up, %d remembered; want %d and %d", n, len(rq.refused), refusedPerServer+looksPerServer, looksPerServer)
	}
}

// TestRefusalsAreBoundedInAll: with room for three refusals in all, two
// servers that each show two rooms not their own have three remembered
// and the fourth looked at again on the next poll (the look cap bounds
// that). A request whose match id is no id ("a.>", 65 bytes) names no
// room: it is never looked up, nor remembered.
func TestRefusalsAreBoundedInAll(t *testing.T) {
	t.Parallel()
	e := newPromiseEnv(t)
	src := &showing{}
	for _, server := range []string{"gs-2", "gs-3"} {
		src.others = append(src.others, forged(server, 0, 2)...)
	}
	for _, id := range []string{"a.>", strings.Repeat("x", 65)} {
		src.others = append(src.others, ShownBackfill{Backfill: play.Backfill{MatchID: id, Ask: 1, Seats: []int{1, 1}}, Server: Server{Name: "gs-2"}})
	}
	rq := newRequester(&rooms{matches: e.matches, src: src, records: e.recs, turnover: backfillDefaults.Turnover}, events.NewPublisher(e.js, e.subj), 5*time.Second, e.recs.log, e.clock)
	rq.refusedAll = 3
	refused := rq.outcomes.WithLabelValues("refused_server")
	for poll, want := range []float64{4, 5, 6} {
		rq.poll(t.Context())
		if n := testutil.ToFloat64(refused); n != want || len(rq.refused) != 3 {
			t.Fatalf("poll %d: %v refused, %d remembered; want %v and 3", poll, n, len(rq.refused), want)
		}
		e.wait(time.Second)
	}
	if n := testutil.CollectAndCount(rq.outcomes); n != 1 {
		t.Fatalf("%d outcomes counted, want refused_server only", n)
	}
}
