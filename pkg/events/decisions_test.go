package events_test

import (
	"sync"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// TestDecisionIsFirstWriterWins: of deciders racing on one match, one
// decision stands and every one of them reads it; deciding again (even
// otherwise) changes nothing, and a match's record is left as it is.
func TestDecisionIsFirstWriterWins(t *testing.T) {
	t.Parallel()
	js := provisioned(t, events.Topology{})
	d, err := events.NewDecisions(t.Context(), js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if got, err := d.Decided(ctx, "m1"); err != nil || got != "" {
		t.Fatalf("undecided match: %q %v", got, err)
	}
	kv, err := js.KeyValue(ctx, events.Subjects{}.MatchesBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "m1", []byte(`{"match_id":"m1"}`)); err != nil {
		t.Fatal(err)
	}
	const n = 16
	got := make([]events.Decision, n)
	var wg sync.WaitGroup
	for i := range n {
		want := events.DecisionPublished
		if i%2 == 1 {
			want = events.DecisionUndone
		}
		wg.Go(func() {
			var err error
			if got[i], _, err = d.Decide(ctx, "m1", want); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] || got[i] == "" {
			t.Fatalf("deciders read %v, want one decision", got)
		}
	}
	other := events.DecisionUndone
	if got[0] == events.DecisionUndone {
		other = events.DecisionPublished
	}
	if again, _, err := d.Decide(ctx, "m1", other); err != nil || again != got[0] {
		t.Fatalf("deciding %s after %s: %q %v", other, got[0], again, err)
	}
	if stored, err := d.Decided(ctx, "m1"); err != nil || stored != got[0] {
		t.Fatalf("Decided = %q %v, want %q", stored, err, got[0])
	}
	if e, err := kv.Get(ctx, "m1"); err != nil || string(e.Value()) != `{"match_id":"m1"}` {
		t.Fatalf("the match record changed: %v", err)
	}
}
