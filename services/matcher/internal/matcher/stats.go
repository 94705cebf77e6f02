package matcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// Queue figures: each runner tells the frontends, through the queue bucket
// (events.QueueStats), how many tickets wait in each mode of its shard and
// how long a ticket of it can expect to wait, so that players see their
// queue.
//
// The estimate is the median wait (creation to match) of the shard's own
// tickets of the mode matched in the last minute. A median, not a mean or
// an EWMA: one party that waited minutes for a wide skill window must not
// tell everyone else to expect minutes, and a burst of instant matches
// must not hide that the rest wait. The waits are counted in a histogram
// of log-spaced buckets (eight per doubling, so the median is within an
// eighth of the truth) per four-second slot: a fixed 11 KiB per mode of a
// shard, O(1) per matched ticket, whatever the rate (a shard may match
// 100,000 tickets a second), and exact about which tickets fall in the
// window, where a ring of the last few hundred would hold only the last
// milliseconds of a busy shard. Visitors are left out: their wait is their
// home shard's.
//
// When nothing was matched in the last minute but tickets wait, the
// estimate is how long the oldest of them has waited so far: that ticket
// will have waited at least this long when it is matched, so it is a lower
// bound on the waits to come, and it grows while the queue stands still,
// where "unknown" would tell a player in a thin queue nothing at all.
//
// Concurrency: the histograms and what was last written belong to the
// runner's goroutine (matched, report). Writing is a few JetStream round
// trips, so report hands the figures to a goroutine of their own and
// goes on; while one write is under way the next report is skipped, never
// waited for. A runner writes at most every queueEvery, a mode's figures
// only when they changed or are about to expire (queueRefresh).
const (
	// queueEvery is how often a runner may write its figures.
	queueEvery = 2 * time.Second
	// queueRefresh rewrites unchanged figures well before the bucket's
	// TTL drops them (events.QueueStatsTTL), even if a write or two fails.
	queueRefresh = events.QueueStatsTTL / 3
	// waitWindow is what "recent" means for the estimate; waitSlot is the
	// step in which old matches leave it.
	waitWindow = time.Minute
	waitSlot   = 4 * time.Second
	waitSlots  = int(waitWindow / waitSlot)
	// subBuckets (2^subBits) per doubling of the wait; waitBuckets reach
	// 2^waitOctaves ms (2.3 h), past any ticket's life
	// (events.TicketMaxAge). Longer waits count in the last bucket.
	subBits     = 3
	subBuckets  = 1 << subBits
	waitOctaves = 23
	waitBuckets = (waitOctaves - subBits + 1) * subBuckets
)

// waitHistogram counts the waits of the tickets matched in the last
// waitWindow, by log-spaced bucket of milliseconds, in slots of waitSlot
// (slots[cur % waitSlots] is the newest); total is the sum of the slots.
type waitHistogram struct {
	slots [waitSlots][waitBuckets]uint32
	total [waitBuckets]int64
	n     int64
	cur   int64
}

// advance moves the window to now, dropping the slots that left it. A
// time before the newest slot (clocks are read in several places) counts
// in the newest slot.
func (h *waitHistogram) advance(now time.Time) {
	s := now.UnixNano() / int64(waitSlot)
	for k := max(h.cur+1, s-int64(waitSlots)+1); k <= s; k++ {
		slot := &h.slots[k%int64(waitSlots)]
		for i, c := range slot {
			h.total[i] -= int64(c)
			h.n -= int64(c)
		}
		*slot = [waitBuckets]uint32{}
	}
	h.cur = max(h.cur, s)
}

// add counts a ticket matched at now after waiting wait.
func (h *waitHistogram) add(now time.Time, wait time.Duration) {
	h.advance(now)
	i := waitBucket(wait.Milliseconds())
	h.slots[h.cur%int64(waitSlots)][i]++
	h.total[i]++
	h.n++
}

// median is the median wait of the window at now (the lower one of an
// even count), placed within its bucket by its rank there; ok is false
// when the window holds no match.
func (h *waitHistogram) median(now time.Time) (ms int64, matched int, ok bool) {
	if h == nil {
		return 0, 0, false
	}
	h.advance(now)
	if h.n == 0 {
		return 0, 0, false
	}
	rank := (h.n - 1) / 2
	for i, c := range h.total {
		if rank >= c {
			rank -= c
			continue
		}
		lo, width := bucketRange(i)
		return lo + width*(2*rank+1)/(2*c), int(h.n), true
	}
	return 0, int(h.n), false // unreachable: rank < n
}

// waitBucket is the bucket of a wait of ms milliseconds: one per
// millisecond below subBuckets, then subBuckets per doubling, told apart
// by the subBits bits after the leading one.
func waitBucket(ms int64) int {
	if ms < subBuckets {
		return int(max(ms, 0))
	}
	n := bits.Len64(uint64(ms)) - 1 // 2^n <= ms < 2^(n+1), n >= subBits
	i := (n-subBits+1)*subBuckets + int(ms>>(n-subBits))&(subBuckets-1)
	return min(i, waitBuckets-1)
}

// bucketRange is the first wait of bucket i and how many milliseconds it
// spans (the inverse of waitBucket).
func bucketRange(i int) (lo, width int64) {
	if i < subBuckets {
		return int64(i), 1
	}
	shift := i/subBuckets - 1 // n - subBits
	return int64(subBuckets+i%subBuckets) << shift, 1 << shift
}

// expectedWait is the estimate for one mode of a shard at now (see the
// comment at the top): the median of the recent matches h counted, or the
// wait so far of the oldest ticket waiting (oldest, 0 when none waits);
// 0 when there is neither. matched is how many the window holds.
func expectedWait(h *waitHistogram, oldest time.Duration, now time.Time) (ms int64, matched int) {
	if ms, matched, ok := h.median(now); ok {
		return max(ms, 1), matched // 0 means unknown
	}
	if oldest > 0 {
		return max(oldest.Milliseconds(), 1), 0
	}
	return 0, 0
}

// waitStats is a runner's part that counts matched waits and reports its
// shard's figures (see the comment at the top). Only the runner's
// goroutine calls it; its writer works on a goroutine of its own.
type waitStats struct {
	shard  events.Shard
	byMode map[string]*waitHistogram
	// last is what was last handed to the writer, by mode.
	last map[string]events.QueueStats
	// due is when the next write may start.
	due time.Time
	w   *queueWriter
	// writing is the write under way, if any; the runner waits for it
	// (its context ends with the runner) before it counts as stopped.
	writing sync.WaitGroup
}

func newWaitStats(s events.Shard, js jetstream.JetStream, subj events.Subjects, timeout time.Duration, log *slog.Logger) *waitStats {
	return &waitStats{
		shard: s, byMode: map[string]*waitHistogram{}, last: map[string]events.QueueStats{},
		w: &queueWriter{js: js, subj: subj, timeout: timeout, log: log},
	}
}

// matched counts the waits of a match's tickets, formed at now in mode.
// Counted when formed: a match whose claims are then lost to another
// owner (rare) still counts, and a commit's few round trips do not.
func (ws *waitStats) matched(mode string, entries []*pool.Entry, now time.Time) {
	h := ws.byMode[mode]
	if h == nil {
		h = &waitHistogram{}
		ws.byMode[mode] = h
	}
	for _, e := range entries {
		if !e.Visitor {
			h.add(now, e.Waited(now))
		}
	}
}

// report hands the figures of every mode that changed (or is about to
// expire) to the writer, at most every queueEvery, and never waits for it.
func (ws *waitStats) report(ctx context.Context, pools map[string]*pool.Pool, now time.Time) {
	if now.Before(ws.due) || ws.w.busy.Load() {
		return
	}
	if ws.w.failed.Swap(false) {
		clear(ws.last) // not all written: write all again
	}
	var out []events.QueueStats
	for _, p := range pools {
		st := ws.figures(p, now)
		if last, ok := ws.last[st.Mode]; worthWriting(last, ok, st) {
			ws.last[st.Mode] = st
			out = append(out, st)
		}
	}
	if len(out) == 0 {
		return
	}
	ws.due = now.Add(queueEvery)
	ws.w.busy.Store(true)
	ws.writing.Go(func() { ws.w.write(ctx, out) })
}

// figures are the queue figures of one pool at now.
func (ws *waitStats) figures(p *pool.Pool, now time.Time) events.QueueStats {
	mode := p.Mode().Name
	st := events.QueueStats{SchemaVersion: events.SchemaVersion, Region: ws.shard.Region, Tier: ws.shard.Tier, Mode: mode,
		Waiting: p.Len(), UpdatedAt: now.UTC()}
	var oldest time.Duration
	if o := p.Oldest(1); len(o) == 1 {
		oldest = o[0].Waited(now)
	}
	st.ExpectedWaitMS, st.Matched = expectedWait(ws.byMode[mode], oldest, now)
	return st
}

// worthWriting reports whether next should be written, last (if written)
// being the mode's figures written before: when they differ, or when
// last is getting old. A mode with nothing waiting and nothing matched
// is written once, so frontends stop showing its old figures at once,
// and then left to expire.
func worthWriting(last events.QueueStats, written bool, next events.QueueStats) bool {
	empty := next.Waiting == 0 && next.Matched == 0 && next.ExpectedWaitMS == 0
	if !written {
		return !empty
	}
	if last.Waiting != next.Waiting || last.Matched != next.Matched || last.ExpectedWaitMS != next.ExpectedWaitMS {
		return true
	}
	return !empty && next.UpdatedAt.Sub(last.UpdatedAt) >= queueRefresh
}

// queueWriter puts a runner's figures in the queue bucket, one write at a
// time (busy), off the runner's goroutine. busy and failed are how the two
// goroutines speak; kv and warned are the writer's alone.
type queueWriter struct {
	js      jetstream.JetStream
	subj    events.Subjects
	timeout time.Duration
	log     *slog.Logger

	busy   atomic.Bool
	failed atomic.Bool

	kv     jetstream.KeyValue // bound at the first write
	warned bool
}

// write puts figures, then lets the runner hand over the next ones. A
// failure is logged once until a write succeeds again (one cut short by
// the runner's stop is not), and makes the runner write everything again
// next time.
func (w *queueWriter) write(ctx context.Context, figures []events.QueueStats) {
	defer w.busy.Store(false)
	wctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	if err := w.put(wctx, figures); err != nil {
		w.failed.Store(true)
		if !w.warned && ctx.Err() == nil {
			w.log.Warn("write queue figures; will retry", "err", err)
		}
		w.warned = true
		return
	}
	w.warned = false
}

func (w *queueWriter) put(ctx context.Context, figures []events.QueueStats) error {
	if w.kv == nil {
		kv, err := w.js.KeyValue(ctx, w.subj.QueueBucket())
		if err != nil {
			return fmt.Errorf("queue bucket: %w", err)
		}
		w.kv = kv
	}
	var errs []error
	for _, st := range figures {
		key, err := events.QueueKey(st.Region, st.Tier, st.Mode)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		data, _ := json.Marshal(st) // QueueStats always encodes
		if _, err := w.kv.Put(ctx, key, data); err != nil {
			errs = append(errs, fmt.Errorf("put %s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}
