package matcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// countingDialer counts the writes a client makes on its connection to
// NATS: each is a flush of what it buffered, one system call.
type countingDialer struct{ writes atomic.Int64 }

func (d *countingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return countedConn{Conn: c, d: d}, nil
}

type countedConn struct {
	net.Conn
	d *countingDialer
}

func (c countedConn) Write(b []byte) (int, error) {
	c.d.writes.Add(1)
	return c.Conn.Write(b)
}

// countedWorker is a bound worker (boundWorker) whose connection's
// writes d counts.
func (e *env) countedWorker(t testing.TB, d *countingDialer) *Worker {
	t.Helper()
	js := testkit.JetStream(t, testkit.Connect(t, e.srv, nats.SetCustomDialer(d)))
	w, err := New(Config{}, js, e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.bindState(t.Context()); err != nil {
		t.Fatal(err)
	}
	return w
}

// formedMatches are n 1v1 matches of r's shard, of tickets <prefix>-<i>
// whose players' live tickets they are.
func (e *env) formedMatches(t testing.TB, r *runner, prefix string, n int) []formed {
	t.Helper()
	t0 := time.Now().UTC().Add(-2 * time.Second)
	var out []formed
	for i := range n {
		m := events.Match{Mode: "1v1", Region: r.shard.Region, Tier: r.shard.Tier, CreatedAt: time.Now().UTC()}
		var all []*pool.Entry
		var keys []string
		for k := range 2 {
			id := fmt.Sprintf("%s-%d", prefix, 2*i+k)
			e.liveTicket(t, "p"+id, id, t0)
			en := &pool.Entry{TicketID: id, Players: []string{"p" + id}, Skill: 1650, Created: t0.UnixNano(), Seq: uint64(2*i + k + 1)}
			all = append(all, en)
			keys = append(keys, events.MatchKey(id, en.Seq))
			m.Tickets = append(m.Tickets, matchTicketOf(en, k))
		}
		m.MatchID = events.MatchID(keys)
		out = append(out, formed{p: r.pools["1v1"], match: m, ids: m.ClaimKeys(), all: all, now: time.Now()})
	}
	return out
}

// commitAll commits batch with r's committer and returns each match's
// outcome, by match id.
func commitAll(t *testing.T, r *runner, batch []formed) map[string]commitOutcome {
	t.Helper()
	var mu sync.Mutex
	outs := map[string]commitOutcome{}
	r.commits.commitBatch(t.Context(), batch, nil, func(o commitOutcome) {
		mu.Lock()
		defer mu.Unlock()
		outs[o.entries[0].TicketID] = o
	})
	byMatch := map[string]commitOutcome{}
	for _, f := range batch {
		byMatch[f.match.MatchID] = outs[f.all[0].TicketID]
	}
	return byMatch
}

// TestBatchOfMatchesCostsWritesPerPhaseNotPerMatch: the 100 matches of
// a tick are committed as one batch, each phase's writes sent together,
// so the matcher's connection flushes about once per phase (7 phases:
// 11 writes seen), however many matches; well under one write per match
// even under the race detector, whose slower publishes let the
// connection's flusher cut a phase into more writes (up to 56 seen). The
// same matches committed one goroutine each, as they were before
// batches, took 600-700 writes (but only 72-113 under the race detector,
// which slows the goroutines enough that their requests share writes).
func TestBatchOfMatchesCostsWritesPerPhaseNotPerMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 100
	d := &countingDialer{}
	r := newRunner(e.countedWorker(t, d), euGold)
	commitAll(t, r, e.formedMatches(t, r, "warm", 1)) // the async publishes' reply subscription, once

	batch := e.formedMatches(t, r, "batch", n)
	before := d.writes.Load()
	for id, o := range commitAll(t, r, batch) {
		if o.unpublished != nil || len(o.retry)+len(o.again) > 0 || o.undone != "" {
			t.Fatalf("match %s: %+v, want published", id, o)
		}
	}
	batched := d.writes.Load() - before

	before = d.writes.Load()
	var wg sync.WaitGroup
	for _, f := range e.formedMatches(t, r, "alone", n) {
		wg.Go(func() { r.commits.commit(t.Context(), f.p, f.match, f.ids, f.all, nil, f.now) })
	}
	wg.Wait()
	alone := d.writes.Load() - before

	ms := storedMatches(t, e)
	if len(ms) != 2*n+1 {
		t.Fatalf("%d matches stored, want %d", len(ms), 2*n+1)
	}
	t.Logf("%d matches: %d writes as one batch, %d one goroutine each", n, batched, alone)
	if batched >= n {
		t.Errorf("%d matches committed as a batch took %d writes (%d one goroutine each): want a few per phase", n, batched, alone)
	}
}

// TestBatchSettlesEachMatchOnItsOwn: one match of a batch meets a ticket
// cancelled before its commit. That match is not published: the
// cancelled ticket is dropped as decided elsewhere, its partner's claim
// is given back and it is matched again. The batch's other matches are
// published.
func TestBatchSettlesEachMatchOnItsOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRunner(e.boundWorker(t), euGold)
	batch := e.formedMatches(t, r, "t", 3)
	if won, _, err := e.claims(t).Claim(t.Context(), "t-3", events.OwnerCancelled); err != nil || !won {
		t.Fatal(won, err)
	}
	outs := commitAll(t, r, batch)
	for _, i := range []int{0, 2} {
		if o := outs[batch[i].match.MatchID]; o.unpublished != nil || len(o.retry)+len(o.again) > 0 {
			t.Errorf("match %d: %+v, want published", i, o)
		}
	}
	o := outs[batch[1].match.MatchID]
	if o.unpublished != nil || len(o.retry) > 0 || len(o.again) != 1 || o.again[0].TicketID != "t-2" {
		t.Errorf("match 1: %+v, want t-2 matched again", o)
	}
	if own, err := e.claims(t).Owner(t.Context(), "t-2"); err != nil || own != "" {
		t.Errorf("t-2 claimed by %q (%v), want given back", own, err)
	}
	got := map[string]bool{}
	for _, m := range storedMatches(t, e) {
		got[m.MatchID] = true
	}
	if len(got) != 2 || !got[batch[0].match.MatchID] || !got[batch[2].match.MatchID] {
		t.Errorf("matches stored %v, want matches 0 and 2", got)
	}
}

// TestAMatchsRecordIsWrittenOnlyWhereItIsRead: a commit's claims carry
// its match (events.HeaderMatch), and it writes no record of the match,
// but for a match whose room takes backfill (the allocator reads its
// record by id); with -match-records (a matcher of an older release
// reads only records), or for a match too big for its copies to pay
// (events.MaxMatchCarried), it has its record, and its claims carry
// nothing.
func TestAMatchsRecordIsWrittenOnlyWhereItIsRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		cfg             Config
		acceptsBackfill bool
		big             bool
		record, carried bool
		sealed          bool
	}{
		{name: "default", carried: true},
		{name: "match seal keys", sealed: true, carried: true},
		{name: "match records", cfg: Config{MatchRecords: true}, record: true},
		{name: "room takes backfill", acceptsBackfill: true, record: true, carried: true},
		{name: "too big to carry", big: true, record: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var seals *events.Seals
			if tc.sealed {
				tc.cfg.MatchSealKeyFile, seals = sealKeys(t, bytes.Repeat([]byte{9}, events.MinSealKey))
			}
			r := newRunner(e.boundWorkerWith(t, tc.cfg), euGold)
			batch := e.formedMatches(t, r, "r", 2)
			for i := range batch {
				batch[i].match.AcceptsBackfill = tc.acceptsBackfill
				if tc.big {
					lat := map[string]int{}
					for k := range events.MaxMatchCarried / 20 {
						lat[fmt.Sprintf("region-%04d", k)] = k
					}
					batch[i].match.Tickets[0].LatenciesMS = lat
				}
			}
			for id, o := range commitAll(t, r, batch) {
				if o.unpublished != nil || len(o.retry)+len(o.again) > 0 || o.undone != "" {
					t.Fatalf("match %s: %+v, want published", id, o)
				}
			}
			kv, err := e.js.KeyValue(t.Context(), e.subj.MatchesBucket())
			if err != nil {
				t.Fatal(err)
			}
			claims := e.claims(t)
			for _, f := range batch {
				_, err := kv.Get(t.Context(), f.match.MatchID)
				if got := err == nil; got != tc.record || err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
					t.Errorf("record of %s: %v; want one: %v", f.match.MatchID, err, tc.record)
				}
				for _, id := range f.ids {
					c, err := claims.Read(t.Context(), id)
					if err != nil || c.Owner != events.MatchOwner(f.match.MatchID) {
						t.Errorf("claim of %s: %+v, %v; want %s's", id, c, err, f.match.MatchID)
						continue
					}
					var m events.Match
					switch {
					case !tc.carried && c.Match != nil:
						t.Errorf("claim of %s carries %d bytes of its match; want none", id, len(c.Match))
					case tc.carried && (json.Unmarshal(c.Match, &m) != nil || m.MatchID != f.match.MatchID || len(m.Tickets) != 2):
						t.Errorf("claim of %s carries %q; want %s", id, c.Match, f.match.MatchID)
					case tc.sealed != c.SealedBy(seals) || !tc.sealed && c.MatchSeal != "":
						t.Errorf("claim of %s: seal %q; want sealed by the matchers' keys: %v", id, c.MatchSeal, tc.sealed)
					}
				}
			}
		})
	}
}

// storedMatches are the matches in the allocations stream.
func storedMatches(t *testing.T, e *env) []events.Match {
	t.Helper()
	var out []events.Match
	for _, m := range stored(t, e, e.subj.AllocationsStream()) {
		mt, err := events.DecodeMatch(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, mt)
	}
	return out
}

// TestMatchesOfOneSweepAreOneBatch: the matches a sweep forms are
// committed as one batch once its turn of the loop ends (commitTurn),
// not one commit each as they form; while a batch is in its phases, the
// matches formed meanwhile wait for the turn after it ends.
func TestMatchesOfOneSweepAreOneBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := newRunner(e.boundWorker(t), euGold)
	p := r.pools["1v1"]
	created := time.Now().Add(-time.Second)
	for i := range 8 {
		id := fmt.Sprintf("s-%d", i)
		e.liveTicket(t, "p"+id, id, created)
		en := &pool.Entry{TicketID: id, Players: []string{"p" + id}, Skill: 1650, Created: created.UnixNano(), Seq: uint64(i + 1)}
		if err := en.SetAttributes(p.Mode(), nil); err != nil {
			t.Fatal(err)
		}
		p.Add(en)
	}
	ctx := t.Context()
	r.sweep(ctx, ctx, r.now())
	if len(r.forming) != 4 || r.committing != 0 {
		t.Fatalf("after the sweep: %d matches formed, %d committing; want 4 formed, none committed yet", len(r.forming), r.committing)
	}
	r.batches.Add(1) // a batch in its phases
	r.commitTurn(ctx, false)
	if len(r.forming) != 4 {
		t.Fatalf("%d matches left to commit while a batch is in its phases, want 4", len(r.forming))
	}
	r.batches.Add(-1)
	r.commitTurn(ctx, false)
	if len(r.forming) != 0 || r.committing != 4 || r.batches.Load() != 1 {
		t.Fatalf("%d formed, %d committing in %d batches; want the 4 committing in 1", len(r.forming), r.committing, r.batches.Load())
	}
	for range 4 {
		select {
		case o := <-r.committed:
			if o.unpublished != nil || len(o.retry)+len(o.again) > 0 {
				t.Errorf("outcome %+v, want published", o)
			}
			r.settleCommit(ctx, o, false)
		case <-time.After(10 * time.Second):
			t.Fatal("the batch did not settle")
		}
	}
	if n := len(storedMatches(t, e)); n != 4 || r.batches.Load() != 0 {
		t.Fatalf("%d matches stored, %d batches in their phases; want 4 and none", n, r.batches.Load())
	}
}
