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

// racedKV is a claims bucket whose create loses to another owner's as
// jetstream's Create reports it for a key given back before (written at
// its delete marker's revision): a raw "wrong last sequence" (10164 on a
// replicated bucket), not ErrKeyExists.
type racedKV struct {
	jetstream.KeyValue
	owner string
}

func (kv *racedKV) Create(context.Context, string, []byte, ...jetstream.KVCreateOpt) (uint64, error) {
	return 0, &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant, Description: "wrong last sequence"}
}

func (kv *racedKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return stubEntry{value: kv.owner}, nil
}

// A claim that loses that race is lost to the other owner, not an error:
// read as one, it failed a frontend's take of a replacement whose
// matcher had just superseded the waiting ticket the same way, and the
// replacement was withdrawn (chaos S63).
func TestAClaimRacedOnAKeyGivenBackIsLost(t *testing.T) {
	c := &Claims{kv: &racedKV{owner: OwnerSuperseded}}
	won, cur, err := c.Claim(t.Context(), "t1", OwnerSuperseded)
	if err != nil || !won || cur != OwnerSuperseded {
		t.Fatalf("Claim = %v, %q, %v; want won: the claim is already its own", won, cur, err)
	}
	c = &Claims{kv: &racedKV{owner: MatchOwner("m1")}}
	won, cur, err = c.Claim(t.Context(), "t1", OwnerCancelled)
	if err != nil || won || cur != MatchOwner("m1") {
		t.Fatalf("Claim = %v, %q, %v; want lost to match:m1", won, cur, err)
	}
}

// stubEntry is a key's entry holding value.
type stubEntry struct {
	jetstream.KeyValueEntry
	value string
}

func (e stubEntry) Value() []byte { return []byte(e.value) }
