package tickets

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// refusingRecords is the tickets bucket refusing every put, create and
// read while refusing is set, and counting the creates it refused (only
// the background's: a creation puts). Its refusal is not one for now
// (refusedNow), so that the creation's own tries end at once.
type refusingRecords struct {
	jetstream.KeyValue
	refusing atomic.Bool
	refused  atomic.Int32
}

func (k *refusingRecords) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if k.refusing.Load() {
		return nil, errRecordRefused
	}
	return k.KeyValue.Get(ctx, key)
}

// refuseRecords makes e's tickets bucket refuse every write and read
// until its refusing is cleared.
func (e *toldEnv) refuseRecords() *refusingRecords {
	records := &refusingRecords{KeyValue: e.s.kv}
	records.refusing.Store(true)
	e.s.kv = records
	return records
}

var errRecordRefused = &jetstream.APIError{Code: http.StatusInternalServerError, Description: "test: bucket refuses"}

func (k *refusingRecords) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	if k.refusing.Load() {
		return 0, errRecordRefused
	}
	return k.KeyValue.Put(ctx, key, v)
}

func (k *refusingRecords) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	if k.refusing.Load() {
		k.refused.Add(1)
		return 0, errRecordRefused
	}
	return k.KeyValue.Create(ctx, key, v, o...)
}

// A creation whose record is refused while a matcher puts its queued
// ticket in a match answers the ticket, and its record is put once the
// bucket takes it; meanwhile this frontend reads the record it holds.
// Before, the put tried once more after the withdrawal found the match
// failed too, and the client was told an error: a no-show (chaos S57: 8
// in one second, the tickets bucket without a leader).
func TestAMatchedTicketWhoseRecordIsRefusedIsAnsweredAndStoredLater(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	records := e.refuseRecords()
	claims, err := events.NewClaims(t.Context(), claimsWrapped{e.js, func(kv jetstream.KeyValue) jetstream.KeyValue { return matchedCreates{kv} }}, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	e.s.claims = claims
	cerr := e.createPat(t)
	id := e.queuedTicket(t)
	if owner, _ := e.s.claims.Owner(t.Context(), id); owner != events.MatchOwner("m-1") {
		t.Fatalf("ticket %s claimed %q; the test wants it in a match", id, owner)
	}
	if cerr != nil {
		t.Fatalf("a creation whose ticket is in a match answered %v: a no-show", cerr)
	}
	if rec, err := e.s.Record(t.Context(), id); err != nil || rec.Ticket.TicketID != id {
		t.Fatalf("record of %s while its put is refused: %+v, %v", id, rec, err)
	}
	if _, err := records.KeyValue.Get(t.Context(), id); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("record stored while the bucket refuses: %v", err)
	}
	if n := heldGauge(t, e.s); n != 1 {
		t.Fatalf("records held gauge %v, want 1", n)
	}
	// The background's first try is refused too, and it tries again.
	for deadline := time.Now().Add(5 * time.Second); records.refused.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no background try of the record within 5 s")
		}
	}
	records.refusing.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := records.KeyValue.Get(t.Context(), id)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record of %s not stored 5 s after the bucket took puts again: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, held := e.s.unstored.get(id); held {
		// The try that stored it drops it as it returns.
		time.Sleep(100 * time.Millisecond)
		if _, held := e.s.unstored.get(id); held {
			t.Fatal("record still held once stored")
		}
	}
	if n := heldGauge(t, e.s); n != 0 {
		t.Fatalf("records held gauge %v once stored, want 0", n)
	}
}

// heldGauge is s's quickmatch_frontend_unstored_records.
func heldGauge(t *testing.T, s *Service) float64 {
	t.Helper()
	for _, c := range s.Metrics() {
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			if strings.Contains(d.String(), `"quickmatch_frontend_unstored_records"`) {
				return testutil.ToFloat64(c)
			}
		}
	}
	t.Fatal("no quickmatch_frontend_unstored_records")
	return 0
}

// A frontend that stops tries each record it holds once more, gives
// it up, and says so.
func TestAStopGivesUpTheUnstoredRecords(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	records := e.refuseRecords()
	if !e.s.putLater("t-1", []byte(`{}`), time.Now().Add(unstoredFor), false) {
		t.Fatal("putLater refused its first record")
	}
	e.s.Stop()
	// After the stop, its one last try (refused too).
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, held := e.s.unstored.get("t-1"); !held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("record still held 2 s after Stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if records.refused.Load() < 1 || !strings.Contains(e.logs.String(), "record of an answered ticket given up") {
		t.Fatalf("%d tries after the stop, logs:\n%s", records.refused.Load(), e.logs.String())
	}
}
