package shard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestTakeoverWhenTheOwnerCannotHear: worker x's connection is cut in the
// direction back to x only: its writes still reach NATS, no reply comes
// back. Its beats and renewals landed all the same, so the others saw it
// alive with valid leases and no one took over for the whole cut. x must
// go quiet once a write of its times out, so that its beat goes stale and
// its leases lapse; y takes x's shards, and x stops consuming before y
// starts. The test allows 20 s and logs what it measured; the stated
// bound is at events.WorkerTTL.
//
// "quiet at the cut": x's last beat before the cut is stored but gets
// no answer in time (a slow write on a loaded machine), so x is quiet
// when the cut comes and writes nothing after it: its leases lapse
// LeaseClockSkew after it must give them up, the least margin there is.
// Before, x gave them up at a step, up to a LeaseRenew late, as y took
// them (CI, 1 run in 12; see TestUnrenewableLeaseIsGivenUpWithoutAnotherStep).
func TestTakeoverWhenTheOwnerCannotHear(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		quietFirst bool
	}{
		{"cut", false},
		{"quiet at the cut", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			takeoverWhenDeaf(t, tc.quietFirst)
		})
	}
}

func takeoverWhenDeaf(t *testing.T, quietFirst bool) {
	srv := testkit.RunServer(t)
	admin := testkit.Connect(t, srv)
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), testkit.JetStream(t, admin), events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	link := testkit.NewLink(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	var shards []events.Shard
	for i := range 6 {
		shards = append(shards, events.Shard{Region: "eu", Tier: fmt.Sprintf("t%d", i)})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(id, url string, wrap func(*Manager)) *owner {
		o := newOwner()
		m, err := New(t.Context(), testkit.JetStream(t, testkit.ConnectURL(t, url)), subj, id, shards, o, log)
		if err != nil {
			t.Fatal(err)
		}
		wrap(m)
		testkit.Run(t, m.Run)
		return o
	}
	// x's beats, each answered until one is lost (armed below).
	beats := &lostPuts{lost: true}
	ox := start("x", link.URL(), func(m *Manager) {
		beats.KeyValue = m.workers
		m.workers = beats
	})
	oy := start("y", srv.ClientURL(), func(*Manager) {})
	t.Cleanup(link.Heal) // before x's Run ends: its hand-back then goes through
	theirs, overlap := spread(t, ox, oy, shards)
	if quietFirst {
		// The cut comes before the lost beat's call ends: x is quiet
		// from then on, and writes nothing after the cut.
		select {
		case <-beats.arm():
		case <-time.After(10 * time.Second):
			t.Fatal("x did not beat")
		}
	}
	cutAt := time.Now()
	link.Cut(testkit.Down)
	testkit.Eventually(t, 20*time.Second, func() bool { return oy.holding(shards...) == len(shards) },
		"y did not take x's %d shards while x hears nothing", len(theirs))
	t.Logf("x's %d shards taken over %s after x's receiving side was cut (bound %s + 2 x %s + 4 x %s)", len(theirs),
		time.Since(cutAt).Round(100*time.Millisecond), events.WorkerTTL, events.LeaseRenew, events.LeaseCallTimeout)
	if n := ox.holding(theirs...); n != 0 {
		t.Errorf("x still consumes %d shards behind the cut", n)
	}
	if o := overlap(); len(o) > 0 {
		t.Errorf("y took shards x still consumed: %v", o)
	}
}

// lostPuts makes the first beat time out (held until its context ends),
// written all the same: its answer was lost. One made with lost set
// loses none until arm.
type lostPuts struct {
	jetstream.KeyValue
	mu   sync.Mutex
	lost bool
	// landed is closed once the beat to lose is stored; nil if unarmed.
	landed chan struct{}
}

// arm makes the next beat lost, and returns a channel closed once it
// is stored.
func (k *lostPuts) arm() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lost, k.landed = false, make(chan struct{})
	return k.landed
}

func (k *lostPuts) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	k.mu.Lock()
	lose, landed := !k.lost, k.landed
	k.lost = true
	k.mu.Unlock()
	if !lose {
		return k.KeyValue.Put(ctx, key, value)
	}
	if _, err := k.KeyValue.Put(context.WithoutCancel(ctx), key, value); err != nil {
		return 0, err
	}
	if landed != nil {
		close(landed)
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestSlowWriteCostsAtMostARound: on a slow but healthy machine, a beat
// or a renewal that misses its call timeout makes the worker quiet, and
// the next read answered ends that: it keeps every shard, and beats and
// renews again at the next step.
func TestSlowWriteCostsAtMostARound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		slow func(m *Manager)
	}{
		{"beat", func(m *Manager) { m.workers = &lostPuts{KeyValue: m.workers} }},
		{"renewal", func(m *Manager) { m.leases = &lostUpdates{KeyValue: m.leases, n: 1, stored: true} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			o := newOwner()
			m := e.manager(t, "me", abc, o)
			round := func() {
				m.step(t.Context())
				m.steps.Wait()
			}
			round()
			if o.holding(abc...) != len(abc) {
				t.Fatal("shards not taken")
			}
			tc.slow(m)
			round()
			before := map[events.Shard]ourLease{}
			for _, s := range abc {
				before[s], _ = m.holds(s)
			}
			beatAt := time.Now()
			round()
			if m.isQuiet() {
				t.Fatal("still quiet though NATS answers")
			}
			for _, s := range abc {
				if o.releasedOnce(s) {
					t.Fatalf("shard %s given up", s)
				}
				if l, _ := m.holds(s); l.rev == before[s].rev {
					t.Errorf("lease of %s not renewed at the step after", s)
				}
			}
			b, err := e.kv(t, e.subj.WorkersBucket()).Get(t.Context(), "me")
			if err != nil {
				t.Fatal(err)
			}
			if ms, _ := strconv.ParseInt(string(b.Value()), 10, 64); ms < beatAt.UnixMilli() {
				t.Errorf("no beat at the step after: last %d, step at %d", ms, beatAt.UnixMilli())
			}
		})
	}
}
