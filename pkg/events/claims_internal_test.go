package events

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// givenBackKV is a claims bucket whose key is taken at the first create
// and given back before it is read, as when the match holding it is
// undone in between.
type givenBackKV struct {
	jetstream.KeyValue
	creates int
	stored  string
}

func (kv *givenBackKV) Create(_ context.Context, _ string, v []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	kv.creates++
	if kv.creates == 1 {
		return 0, jetstream.ErrKeyExists
	}
	kv.stored = string(v)
	return 1, nil
}

func (kv *givenBackKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

// A claim found taken but given back before its owner is read is claimed
// again: the ticket is undecided, and reporting it lost to nobody made the
// matcher drop it as decided elsewhere (a ticket lost in a kill test).
func TestClaimGivenBackBeforeTheReadIsClaimedAgain(t *testing.T) {
	kv := &givenBackKV{}
	c := &Claims{kv: kv}
	won, cur, err := c.Claim(t.Context(), "t1", "match:m1")
	if err != nil || !won || cur != "match:m1" || kv.stored != "match:m1" {
		t.Fatalf("Claim = %v, %q, %v (stored %q); want won by match:m1", won, cur, err, kv.stored)
	}
}
