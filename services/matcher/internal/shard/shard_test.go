package shard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// env is one embedded server with the topology provisioned.
type env struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	subj events.Subjects
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	js := testkit.JetStream(t, nc)
	e := &env{nc: nc, js: js}
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: e.subj}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) manager(t *testing.T, id string, shards []events.Shard, o *owner) *Manager {
	t.Helper()
	m, err := New(t.Context(), e.js, e.subj, id, shards, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *env) kv(t *testing.T, bucket string) jetstream.KeyValue {
	t.Helper()
	kv, err := e.js.KeyValue(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// owner records what the manager drives; Release of a shard in block
// waits until its channel is closed (a runner slow to stop).
type owner struct {
	mu       sync.Mutex
	acquired map[events.Shard]int
	released map[events.Shard]int
	block    map[events.Shard]chan struct{}
	// onAcquire runs after each Acquire, outside the lock.
	onAcquire func()
}

func newOwner() *owner {
	return &owner{acquired: map[events.Shard]int{}, released: map[events.Shard]int{}, block: map[events.Shard]chan struct{}{}}
}

func (o *owner) Acquire(_ context.Context, s events.Shard) {
	o.mu.Lock()
	o.acquired[s]++
	f := o.onAcquire
	o.mu.Unlock()
	if f != nil {
		f()
	}
}

func (o *owner) Release(s events.Shard) {
	o.mu.Lock()
	o.released[s]++
	b := o.block[s]
	o.mu.Unlock()
	if b != nil {
		<-b
	}
}

// holding counts the shards acquired more often than released.
func (o *owner) holding(shards ...events.Shard) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, s := range shards {
		if o.acquired[s] > o.released[s] {
			n++
		}
	}
	return n
}

func (o *owner) releasedOnce(s events.Shard) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.released[s] > 0
}

// stepAsync runs one step as Run would, in the background: a step that
// blocks must fail the test's wait, not hang it.
func stepAsync(ctx context.Context, m *Manager) { go m.step(ctx) }

var abc = []events.Shard{{Region: "eu", Tier: "a"}, {Region: "eu", Tier: "b"}, {Region: "eu", Tier: "c"}}

// slowGet holds the first Get of one key until the other shards are all
// acquired, its context ends, or 10 s pass.
type slowGet struct {
	jetstream.KeyValue
	key    string
	others chan struct{}

	mu          sync.Mutex
	seen        bool
	hadDeadline bool
	overlapped  bool
}

func (k *slowGet) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	k.mu.Lock()
	first := key == k.key && !k.seen
	k.seen = k.seen || key == k.key
	k.mu.Unlock()
	if first {
		_, dl := ctx.Deadline()
		overlapped := false
		select {
		case <-k.others:
			overlapped = true
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
		k.mu.Lock()
		k.hadDeadline, k.overlapped = dl, overlapped
		k.mu.Unlock()
	}
	return k.KeyValue.Get(ctx, key)
}

// TestSlowLeaseCallHoldsUpNoOtherShard: the lease read of one shard hangs
// (its answer is held on a cut route); the other shards are taken while
// it is still in flight, and the hung call has a deadline of its own.
// Before, the lease steps ran one after another with no deadline but the
// client's 5 s default, so one hung call delayed every shard after it.
func TestSlowLeaseCallHoldsUpNoOtherShard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := newOwner()
	m := e.manager(t, "me", abc, o)
	slow := &slowGet{KeyValue: m.leases, key: abc[0].String(), others: make(chan struct{})}
	m.leases = slow
	var once sync.Once
	o.onAcquire = func() {
		if o.holding(abc[1:]...) == 2 {
			once.Do(func() { close(slow.others) })
		}
	}
	stepAsync(t.Context(), m)
	testkit.Eventually(t, 15*time.Second, func() bool { return o.holding(abc...) == 3 }, "shards not all taken")
	slow.mu.Lock()
	defer slow.mu.Unlock()
	if !slow.overlapped {
		t.Error("the other shards were taken only after the hung lease read of " + slow.key + " ended")
	}
	if !slow.hadDeadline {
		t.Error("the lease read had no deadline of its own")
	}
}

// TestSlowReleaseHoldsUpNoOtherRenewal: a shard whose lease was lost is
// released, and its runner is slow to stop; the other shards' leases are
// renewed meanwhile (or they would lapse and move too).
func TestSlowReleaseHoldsUpNoOtherRenewal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := newOwner()
	m := e.manager(t, "me", abc, o)
	stepAsync(t.Context(), m)
	testkit.Eventually(t, 10*time.Second, func() bool { return o.holding(abc...) == 3 }, "shards not all taken")
	leases := e.kv(t, e.subj.LeasesBucket())
	revOf := func(s events.Shard) uint64 {
		en, err := leases.Get(t.Context(), s.String())
		if err != nil {
			return 0
		}
		return en.Revision()
	}
	before := revOf(abc[2])
	// Someone else wrote shard a's lease: the renewal fails, a is released.
	if _, err := leases.Put(t.Context(), abc[0].String(), []byte(`{"owner":"other","until":0}`)); err != nil {
		t.Fatal(err)
	}
	unblock := make(chan struct{})
	o.mu.Lock()
	o.block[abc[0]] = unblock
	o.mu.Unlock()
	defer close(unblock)
	stepAsync(t.Context(), m)
	// One step, as Run makes them one after another: c is renewed in
	// the step that releases a.
	testkit.Eventually(t, 10*time.Second, func() bool { return o.releasedOnce(abc[0]) }, "lost lease not released")
	testkit.Eventually(t, 5*time.Second, func() bool { return revOf(abc[2]) > before }, "shard c's lease not renewed while a's runner stops")
}

// listFails fails ListKeys while fail is set: no consumer can be made
// (the JetStream meta leader is on the cut side).
type listFails struct {
	jetstream.KeyValue
	mu   sync.Mutex
	fail bool
}

func (k *listFails) ListKeys(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyLister, error) {
	k.mu.Lock()
	fail := k.fail
	k.mu.Unlock()
	if fail {
		return nil, errors.New("no meta leader")
	}
	return k.KeyValue.ListKeys(ctx, opts...)
}

// TestTakeoverWithoutAWorkerListing: a worker listed before stops
// beating; its shards are taken over once its beat is older than
// WorkerTTL and its leases lapsed, though the worker list cannot be read
// again (the beats themselves can). Before, a failed listing took nothing
// new.
func TestTakeoverWithoutAWorkerListing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var shards []events.Shard
	for i := range 8 {
		shards = append(shards, events.Shard{Region: "eu", Tier: fmt.Sprintf("t%d", i)})
	}
	var theirs []events.Shard
	for _, s := range shards {
		if Owns(s, "x", []string{"me", "x"}) {
			theirs = append(theirs, s)
		}
	}
	if len(theirs) == 0 || len(theirs) == len(shards) {
		t.Fatalf("x owns %d of %d shards: pick other names", len(theirs), len(shards))
	}
	t0 := time.UnixMilli(time.Now().UnixMilli())
	workers, leases := e.kv(t, e.subj.WorkersBucket()), e.kv(t, e.subj.LeasesBucket())
	if _, err := workers.Put(t.Context(), "x", []byte(strconv.FormatInt(t0.UnixMilli(), 10))); err != nil {
		t.Fatal(err)
	}
	for _, s := range theirs {
		b, _ := json.Marshal(lease{Owner: "x", Until: t0.Add(events.LeaseTTL).UnixMilli()})
		if _, err := leases.Create(t.Context(), s.String(), b); err != nil {
			t.Fatal(err)
		}
	}
	o := newOwner()
	m := e.manager(t, "me", shards, o)
	lf := &listFails{KeyValue: m.workers}
	m.workers = lf
	var mu sync.Mutex
	now := t0
	m.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	stepAsync(t.Context(), m)
	mine := len(shards) - len(theirs)
	testkit.Eventually(t, 10*time.Second, func() bool { return o.holding(shards...) == mine }, "own shards not taken")
	if o.holding(theirs...) != 0 {
		t.Fatal("x's shards taken while x beats")
	}
	lf.mu.Lock()
	lf.fail = true
	lf.mu.Unlock()
	mu.Lock()
	now = t0.Add(events.WorkerTTL + events.LeaseRenew)
	mu.Unlock()
	// A round at a time, as Run makes them, until x's shards are taken.
	testkit.Eventually(t, 10*time.Second, func() bool {
		m.step(t.Context())
		m.steps.Wait()
		return o.holding(theirs...) == len(theirs)
	}, "x's shards not taken over: %d of %d", o.holding(theirs...), len(theirs))
}

// TestOwnershipReadsGoToTheLeader: the reads that decide ownership (a
// lease, another worker's beat) are message gets, which only the stream
// leader answers, never direct gets, which any replica answers however
// far behind it is (a replica on the far side of a cut).
func TestOwnershipReadsGoToTheLeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	api := testkit.Collect(t, e.nc, "$JS.API.>")
	// gets counts the leader reads and direct gets of bucket so far.
	gets := func(bucket string) (leader, direct int) {
		for _, m := range api() {
			switch {
			case m.Subject == "$JS.API.STREAM.MSG.GET.KV_"+bucket:
				leader++
			case strings.HasPrefix(m.Subject, "$JS.API.DIRECT.GET.KV_"+bucket+"."), m.Subject == "$JS.API.DIRECT.GET.KV_"+bucket:
				direct++
			}
		}
		return leader, direct
	}
	workers, leases := e.kv(t, e.subj.WorkersBucket()), e.kv(t, e.subj.LeasesBucket())
	if _, err := workers.Put(t.Context(), "x", []byte(strconv.FormatInt(time.Now().UnixMilli(), 10))); err != nil {
		t.Fatal(err)
	}
	// Lapsed leases: the manager reads one before taking it.
	mine := 0
	for _, s := range abc {
		if _, err := leases.Put(t.Context(), s.String(), []byte(`{"owner":"gone","until":0}`)); err != nil {
			t.Fatal(err)
		}
		if Owns(s, "me", []string{"me", "x"}) {
			mine++
		}
	}
	if mine == 0 {
		t.Fatal("x owns every shard: pick other names")
	}
	o := newOwner()
	m := e.manager(t, "me", abc, o)
	stepAsync(t.Context(), m)
	testkit.Eventually(t, 10*time.Second, func() bool { return o.holding(abc...) == mine }, "lapsed leases not taken")
	for _, b := range []string{e.subj.WorkersBucket(), e.subj.LeasesBucket()} {
		// The subscription hears the requests a little after the server.
		testkit.Eventually(t, 5*time.Second, func() bool { n, _ := gets(b); return n > 0 }, "no leader read of bucket %s", b)
		if _, direct := gets(b); direct > 0 {
			t.Errorf("%d direct gets of bucket %s", direct, b)
		}
	}
}

// stuckLists lists no key and keeps the listing's channel open until
// keys is closed: nats.go closes it only once the ordered consumer behind
// the listing is deleted, a request that does not take the call's
// deadline, held for seconds on a cut route.
type stuckLists struct {
	jetstream.KeyValue
	keys chan string
}

func (k *stuckLists) ListKeys(context.Context, ...jetstream.WatchOpt) (jetstream.KeyLister, error) {
	return stuckLister{k.keys}, nil
}

type stuckLister struct{ keys chan string }

func (l stuckLister) Keys() <-chan string { return l.keys }
func (l stuckLister) Stop() error         { return nil }

// TestWorkerListingEndsAtItsDeadline: a listing whose channel stays open
// past the call's deadline is given up then. Before, the step waited for
// the channel to close: a cut that came during a listing held the step,
// so no renewal started and nothing gave the shards up while their
// leases lapsed and another worker took them over (CI, 1 run in 12).
func TestWorkerListingEndsAtItsDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.manager(t, "me", abc, newOwner())
	keys := make(chan string)
	t.Cleanup(func() { close(keys) })
	m.workers = &stuckLists{KeyValue: m.workers, keys: keys}
	done := make(chan error, 1)
	go func() {
		_, err := m.list(t.Context())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a listing cut short by its deadline taken as complete")
		}
	case <-time.After(20 * m.timeout):
		t.Fatal("the worker listing outlived its deadline")
	}
}
