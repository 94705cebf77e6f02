package events

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// deadlineKV is a claims bucket that records, for each call, whether its
// context had a deadline within ClaimCallTimeout.
type deadlineKV struct {
	jetstream.KeyValue
	mu      sync.Mutex
	calls   int
	unbound []string
}

func (kv *deadlineKV) check(op string, ctx context.Context) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.calls++
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > ClaimCallTimeout {
		kv.unbound = append(kv.unbound, op)
	}
}

func (kv *deadlineKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	kv.check("get "+key, ctx)
	return kv.KeyValue.Get(ctx, key)
}

func (kv *deadlineKV) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	kv.check("create "+key, ctx)
	return kv.KeyValue.Create(ctx, key, v, o...)
}

func (kv *deadlineKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	kv.check("update "+key, ctx)
	return kv.KeyValue.Update(ctx, key, v, rev)
}

func (kv *deadlineKV) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	kv.check("put "+key, ctx)
	return kv.KeyValue.Put(ctx, key, v)
}

func (kv *deadlineKV) Delete(ctx context.Context, key string, o ...jetstream.KVDeleteOpt) error {
	kv.check("delete "+key, ctx)
	return kv.KeyValue.Delete(ctx, key, o...)
}

// TestEveryClaimCallIsBounded: each call a claim makes to its bucket
// carries a deadline of ClaimCallTimeout at most, whatever its caller's
// context (here none): a call held on a cut route fails in time for its
// caller to try again, rather than after the client's 5 s default, one
// call after another.
func TestEveryClaimCallIsBounded(t *testing.T) {
	t.Parallel()
	c := provisionedClaims(t)
	kv := &deadlineKV{KeyValue: c.kv}
	c.kv = kv
	ctx := context.Background()
	if _, err := c.ClaimAll(ctx, []string{"t1", "t2"}, MatchOwner("m1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Claim(ctx, "t1", OwnerExpired); err != nil { // lost: reads the owner
		t.Fatal(err)
	}
	if _, err := c.Supersede(ctx, "t1", MatchOwner("m1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, []string{"t2"}, MatchOwner("m1")); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkTold(ctx, "t1", OwnerSuperseded); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Told(ctx, "t1", OwnerSuperseded); err != nil {
		t.Fatal(err)
	}
	if kv.calls < 8 || len(kv.unbound) > 0 {
		t.Fatalf("%d calls, these without a deadline within %s: %v", kv.calls, ClaimCallTimeout, kv.unbound)
	}
}

// provisionedClaims are the claims of a provisioned test server, for a
// test to wrap their bucket.
func provisionedClaims(t *testing.T) *Claims {
	t.Helper()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	if err := Provision(t.Context(), js, Topology{}); err != nil {
		t.Fatal(err)
	}
	c, err := NewClaims(t.Context(), js, Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
