package events

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// releaseKV is a claims bucket of a few keys in memory whose reads and
// deletes fail as a test says: getErr and delErr by key; mismatches
// deletes answer "revision mismatch" first (another writer, which
// rewrote the key with the same owner, came in between).
type releaseKV struct {
	jetstream.KeyValue
	mu         sync.Mutex // Release reads and deletes side by side
	owners     map[string]string
	getErr     map[string]error
	delErr     map[string]error
	mismatches int
}

type releaseEntry struct {
	jetstream.KeyValueEntry
	value string
}

func (e releaseEntry) Value() []byte    { return []byte(e.value) }
func (e releaseEntry) Revision() uint64 { return 1 }

func (kv *releaseKV) Get(_ context.Context, key string) (jetstream.KeyValueEntry, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if err := kv.getErr[key]; err != nil {
		return nil, err
	}
	owner, ok := kv.owners[key]
	if !ok {
		return nil, jetstream.ErrKeyNotFound
	}
	return releaseEntry{value: owner}, nil
}

func (kv *releaseKV) Delete(_ context.Context, key string, _ ...jetstream.KVDeleteOpt) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if err := kv.delErr[key]; err != nil {
		return err
	}
	if kv.mismatches > 0 {
		kv.mismatches--
		return jetstream.ErrKeyRevisionMismatch
	}
	delete(kv.owners, key)
	return nil
}

// A claim still the owner's that Release could not give back (its read
// or its delete failed) is reported: the allocator's requeue published
// a ticket whose claim its match kept, and a matcher hearing that
// match's matched notice dropped the requeued ticket as a copy. A claim
// gone or another owner's is no failure; the other claims are given
// back all the same.
func TestReleaseReportsAClaimItCouldNotGiveBack(t *testing.T) {
	down := errors.New("nats: timeout")
	for name, kv := range map[string]*releaseKV{
		"read fails":   {getErr: map[string]error{"lo": down}},
		"delete fails": {delErr: map[string]error{"lo": down}},
	} {
		t.Run(name, func(t *testing.T) {
			kv.owners = map[string]string{"lo": "match:m1", "pa": "match:m1", "other": OwnerCancelled}
			err := (&Claims{kv: kv}).Release(t.Context(), []string{"lo", "pa", "other", "gone"}, "match:m1")
			if !errors.Is(err, down) || !strings.Contains(err.Error(), "lo") {
				t.Fatalf("Release = %v; want lo's failure", err)
			}
			if _, kept := kv.owners["pa"]; kept || kv.owners["other"] != OwnerCancelled {
				t.Fatalf("claims left %v; want pa's given back and other's kept", kv.owners)
			}
		})
	}
}

// A claim rewritten between its read and its delete is read again, and
// given back if it is still the owner's.
func TestReleaseReadsAChangedClaimAgain(t *testing.T) {
	kv := &releaseKV{owners: map[string]string{"lo": "match:m1"}, mismatches: 1}
	if err := (&Claims{kv: kv}).Release(t.Context(), []string{"lo"}, "match:m1"); err != nil {
		t.Fatal(err)
	}
	if _, kept := kv.owners["lo"]; kept {
		t.Fatal("claim kept after a revision mismatch")
	}
	kv = &releaseKV{owners: map[string]string{"lo": "match:m1"}, mismatches: claimAttempts}
	if err := (&Claims{kv: kv}).Release(t.Context(), []string{"lo"}, "match:m1"); err == nil {
		t.Fatal("a claim that changed under every delete reported given back")
	}
}
