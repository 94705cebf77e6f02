package events

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// storedButTimedOutKV stores the create of key, then answers it with a
// timeout: the reply lost on a cut, the claim made all the same.
type storedButTimedOutKV struct {
	jetstream.KeyValue
	key string
}

func (kv *storedButTimedOutKV) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	rev, err := kv.KeyValue.Create(ctx, key, v, o...)
	if key == kv.key && err == nil {
		return 0, context.DeadlineExceeded
	}
	return rev, err
}

// TestClaimAllKeepsItsClaimsWhenOneIsUnknown: a match's claim whose create
// timed out may have been stored. The other claims are not given back:
// with every claim the match's, a worker that meets them publishes the
// match (recoverMatch), and the tickets freed here could be matched a
// second time. They stay the match's, undecided, for whoever meets them.
func TestClaimAllKeepsItsClaimsWhenOneIsUnknown(t *testing.T) {
	t.Parallel()
	c := provisionedClaims(t)
	real := c.kv
	c.kv = &storedButTimedOutKV{KeyValue: real, key: "t3"}
	owner := MatchOwner("m1")
	if _, err := c.ClaimAll(t.Context(), []string{"t1", "t2", "t3"}, owner); err == nil {
		t.Fatal("a claim that timed out was taken for made")
	}
	c.kv = real
	for _, id := range []string{"t1", "t2", "t3"} {
		if own, err := c.Owner(t.Context(), id); own != owner || err != nil {
			t.Errorf("claim of %s after the timeout: %q, %v; want %q: every claim the match's, for recoverMatch to publish or undo", id, own, err, owner)
		}
	}
}
