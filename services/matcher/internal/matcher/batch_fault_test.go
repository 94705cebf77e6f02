package matcher

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// faultWorker is a bound worker on js (a connection of the test's own,
// through a Link, or faults around the buckets), with publishTimeout.
func (e *env) faultWorker(t *testing.T, js jetstream.JetStream, publishTimeout time.Duration) *Worker {
	t.Helper()
	w, err := New(Config{PublishTimeout: publishTimeout}, js, e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.bindState(t.Context()); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestBatchUnderACutLink: the batched commit (the path production runs:
// every write sent at once, PublishAll) meets a real fault. The worker's
// connection goes through a Link, cut once every claim of the batch is
// held: before the live-ticket checks (claimed), or before the decisions
// (checked), whose creates the cut holds and the heal then stores, after
// the commit gave up on them. Every match of the batch fails, none is
// sent, and all their tickets are retried with the claims held. After
// the heal the same matches, formed again, are each sent once, whatever
// the held writes did meanwhile: no ticket in two matches.
func TestBatchUnderACutLink(t *testing.T) {
	t.Parallel()
	for _, at := range []string{"claimed", "checked"} {
		t.Run(at, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			link := testkit.NewLink(t, strings.TrimPrefix(e.srv.ClientURL(), "nats://"))
			js := testkit.JetStream(t, testkit.ConnectURL(t, link.URL()))
			r := newRunner(e.faultWorker(t, js, time.Second), euGold)
			var once sync.Once
			cut := func(string) { once.Do(func() { link.Cut(testkit.Both) }) }
			if at == "claimed" {
				r.commits.claimed = cut
			} else {
				r.commits.checked = cut
			}
			batch := e.formedMatches(t, r, "c", 3)
			for id, o := range commitAll(t, r, batch) {
				if o.unpublished != nil || len(o.retry) != 2 || len(o.again) > 0 || o.undone != "" {
					t.Errorf("match %s during the cut: %+v, want its 2 tickets retried", id, o)
				}
			}
			link.Heal()
			r.commits.claimed, r.commits.checked = nil, nil
			claims := e.claims(t)
			for _, f := range batch {
				for _, id := range f.ids {
					if own, err := claims.Owner(t.Context(), id); err != nil || own != events.MatchOwner(f.match.MatchID) {
						t.Errorf("claim %s after the cut: %q (%v), want its match's, held", id, own, err)
					}
				}
			}
			if at == "checked" {
				// The decisions the cut held are stored at the heal.
				for _, f := range batch {
					testkit.Eventually(t, 10*time.Second, func() bool {
						d, err := r.commits.decisions.Decided(t.Context(), f.match.MatchID)
						return err == nil && d == events.DecisionPublished
					}, "the held decision of %s never stored", f.match.MatchID)
				}
			}
			for id, o := range commitAll(t, r, batch) {
				if o.unpublished != nil || len(o.retry)+len(o.again) > 0 || o.undone != "" {
					t.Errorf("match %s after the heal: %+v, want sent", id, o)
				}
			}
			sent := map[string]int{}
			inMatch := map[string]string{}
			for _, m := range storedMatches(t, e) {
				sent[m.MatchID]++
				for _, tk := range m.Tickets {
					if other, ok := inMatch[tk.TicketID]; ok && other != m.MatchID {
						t.Errorf("ticket %s in matches %s and %s", tk.TicketID, other, m.MatchID)
					}
					inMatch[tk.TicketID] = m.MatchID
				}
			}
			for _, f := range batch {
				if sent[f.match.MatchID] != 1 {
					t.Errorf("match %s sent %d times, want once", f.match.MatchID, sent[f.match.MatchID])
				}
			}
		})
	}
}

// slowClaim is a JetStream whose claims bucket holds the create of one
// ticket's claim until its context ends (a slow key: a ticket found
// claimed, its owner read and the claim tried again, all slow).
type slowClaim struct {
	jetstream.JetStream
	bucket, key string
}

// WrapKeyValue holds key in the claims bucket (events.KeyValueWrapper).
func (s *slowClaim) WrapKeyValue(kv jetstream.KeyValue) jetstream.KeyValue {
	if kv.Bucket() != s.bucket {
		return kv
	}
	return slowClaimKV{KeyValue: kv, s: s}
}

type slowClaimKV struct {
	jetstream.KeyValue
	s *slowClaim
}

func (kv slowClaimKV) Create(ctx context.Context, key string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	if key == kv.s.key {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return kv.KeyValue.Create(ctx, key, v, o...)
}

// TestSlowClaimFailsOnlyItsMatch: one ticket's claim takes the claims
// phase's whole deadline. Its match fails (its tickets retried), and
// the batch's other matches go on through their checks and decisions
// and are sent. Before, one deadline for the four phases was spent by
// the slow claim, and every match of the batch failed at its check
// (R4 F3).
func TestSlowClaimFailsOnlyItsMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	slow := &slowClaim{JetStream: testkit.JetStream(t, testkit.Connect(t, e.srv)), bucket: e.subj.ClaimsBucket()}
	r := newRunner(e.faultWorker(t, slow, time.Second), euGold)
	batch := e.formedMatches(t, r, "s", 3)
	slow.key = batch[0].ids[0]
	outs := commitAll(t, r, batch)
	if o := outs[batch[0].match.MatchID]; len(o.retry) != 2 || o.unpublished != nil {
		t.Errorf("the slow claim's match: %+v, want its 2 tickets retried", o)
	}
	for _, f := range batch[1:] {
		if o := outs[f.match.MatchID]; o.unpublished != nil || len(o.retry)+len(o.again) > 0 || o.undone != "" {
			t.Errorf("match %s beside the slow claim: %+v, want sent", f.match.MatchID, o)
		}
	}
	if n := len(storedMatches(t, e)); n != 2 {
		t.Errorf("%d matches sent, want the 2 beside the slow claim", n)
	}
}

// TestAMatchItsCommitGaveUpIsUndoneAtOnce: a match whose commit held
// one ticket's claim and had the other's time out keeps its claims and
// retries its tickets. A recovery by the same runner (an expiry, another
// match meeting the claim) undoes it at once: its commit runs no more.
// Before, it waited for the record to be staleClaim old, and the ticket
// held past its max wait expired (chaos S70: two tickets). Its id is
// spent: the same tickets formed again are named anew (review R3: they
// were committed under it, only to find it undone). A match given up
// but not undone, formed again, keeps its id, and its new commit is not
// undone from under it.
func TestAMatchItsCommitGaveUpIsUndoneAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	slow := &slowClaim{JetStream: testkit.JetStream(t, testkit.Connect(t, e.srv)), bucket: e.subj.ClaimsBucket()}
	r := newRunner(e.faultWorker(t, slow, 300*time.Millisecond), euGold)
	batch := e.formedMatches(t, r, "a", 2)
	keysOf := func(f formed) []string {
		return []string{events.MatchKey(f.all[0].TicketID, f.all[0].Seq), events.MatchKey(f.all[1].TicketID, f.all[1].Seq)}
	}
	claims := e.claims(t)
	for _, f := range batch {
		slow.key = f.ids[1] // its first claim is made, its second times out
		if o := commitAll(t, r, []formed{f})[f.match.MatchID]; len(o.retry) != 2 {
			t.Fatalf("commit of %s: %+v, want its 2 tickets retried", f.match.MatchID, o)
		}
		if owner, err := claims.Owner(t.Context(), f.ids[0]); err != nil || owner != events.MatchOwner(f.match.MatchID) {
			t.Fatalf("setup: %s claimed %q (%v), want its match's", f.ids[0], owner, err)
		}
	}
	undone, formedAgain := batch[0], batch[1]
	if got := r.commits.rec.recoverMatch(t.Context(), undone.match.MatchID, undone.ids[0]); got != released {
		t.Fatalf("recoverMatch = %v, want released at once", got)
	}
	if owner, err := claims.Owner(t.Context(), undone.ids[0]); err != nil || owner != "" {
		t.Fatalf("%s claimed %q (%v) after the undo, want free", undone.ids[0], owner, err)
	}
	if id := r.matchID(keysOf(undone)); id == undone.match.MatchID {
		t.Fatalf("the undone match's tickets formed again under its spent id %s", id)
	}
	if id := r.matchID(keysOf(formedAgain)); id != formedAgain.match.MatchID {
		t.Fatalf("formed again as %s, want %s", id, formedAgain.match.MatchID)
	}
	if got := r.commits.rec.recoverMatch(t.Context(), formedAgain.match.MatchID, formedAgain.ids[0]); got != undecided {
		t.Fatalf("recoverMatch of a match formed again = %v, want undecided: its new commit runs", got)
	}
}
