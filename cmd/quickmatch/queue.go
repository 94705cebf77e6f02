package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// queueRow is one shard and mode: the queue bucket's figures, written by
// the shard's owner every couple of seconds, and the waits of the
// tickets matched in the window, read from the matches formed in it.
type queueRow struct {
	Shard string `json:"shard"`
	Mode  string `json:"mode"`
	// Stats is the owner's last QueueStats, nil when none is kept (no
	// owner wrote one within events.QueueStatsTTL).
	Stats *events.QueueStats `json:"stats,omitempty"`
	// Waited are the waits, creation to match, of the tickets in the
	// matches formed in the window; nil when none was.
	Waited *percentiles `json:"matched_wait,omitempty"`
}

// percentiles of the waits of matched tickets, in milliseconds.
type percentiles struct {
	Tickets int   `json:"tickets"`
	P50     int64 `json:"p50_ms"`
	P90     int64 `json:"p90_ms"`
	P99     int64 `json:"p99_ms"`
	Max     int64 `json:"max_ms"`
}

// queueOut is the queue command's output.
type queueOut struct {
	// Window is how far back the matches were read.
	Window string     `json:"window"`
	Rows   []queueRow `json:"shards"`
	// Capped says the window held more than -max-matches stored messages
	// (claims and records): the percentiles are of its oldest matches.
	Capped bool `json:"capped,omitempty"`
}

// queueCmd shows, per shard and mode, what waits and for how long.
// Waiting and expected wait are the matcher's own figures (the queue
// bucket, events.QueueStats). The percentiles are not stored anywhere:
// they are computed here from the matches formed in the window (each
// carried by its tickets' claims, and written to the matches bucket
// where a record is kept), as each ticket's wait from its created_at to
// its match's. So they are the waits of tickets that were matched, not
// of those still waiting (only their owner's memory holds those) nor of
// those that expired or were cancelled; a match undone afterwards counts
// only if it had a record (its claims are given back).
func queueCmd(fs *flag.FlagSet) runFunc {
	window := fs.Duration("window", time.Minute, "how far back matches count for the wait percentiles (the expected wait uses the last minute); 0 leaves them out")
	maxMatches := atLeastOne(100000)
	fs.Var(&maxMatches, "max-matches", "read at most this `number` of stored messages (the matches' claims and records) for the percentiles")
	return func(ctx context.Context, s *session, _ []string) error {
		out, err := s.queue(ctx, *window, int(maxMatches))
		if err != nil {
			return err
		}
		if s.json {
			return printJSON(s.out, out)
		}
		return writeQueue(s.out, out)
	}
}

func (s *session) queue(ctx context.Context, window time.Duration, maxMatches int) (*queueOut, error) {
	rows := map[string]*queueRow{}
	row := func(region, tier, mode string) *queueRow {
		shard := events.Shard{Region: region, Tier: tier}.String()
		key := shard + " " + mode
		if rows[key] == nil {
			rows[key] = &queueRow{Shard: shard, Mode: mode}
		}
		return rows[key]
	}
	if err := s.queueStats(ctx, func(q events.QueueStats) { row(q.Region, q.Tier, q.Mode).Stats = &q }); err != nil {
		return nil, err
	}
	out := &queueOut{Window: window.String(), Rows: []queueRow{}}
	if window > 0 {
		waits := map[*queueRow][]time.Duration{}
		capped, err := s.matchedWaits(ctx, time.Now().Add(-window), maxMatches, func(m events.Match) {
			r := row(m.Region, m.Tier, m.Mode)
			for _, t := range m.Tickets {
				if !t.CreatedAt.IsZero() {
					waits[r] = append(waits[r], m.CreatedAt.Sub(t.CreatedAt))
				}
			}
		})
		if err != nil {
			return nil, err
		}
		out.Capped = capped
		for r, ws := range waits {
			r.Waited = percentilesOf(ws)
		}
	}
	for _, r := range rows {
		out.Rows = append(out.Rows, *r)
	}
	slices.SortFunc(out.Rows, func(a, b queueRow) int { return cmp.Or(cmp.Compare(a.Shard, b.Shard), cmp.Compare(a.Mode, b.Mode)) })
	return out, nil
}

// queueStats hands every figure of the queue bucket to add.
func (s *session) queueStats(ctx context.Context, add func(events.QueueStats)) error {
	kv, err := s.js.KeyValue(ctx, s.subj.QueueBucket())
	if err != nil {
		return fmt.Errorf("queue bucket: %w", err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("queue bucket: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	for key := range keys.Keys() {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // aged out since it was listed
		}
		if err != nil {
			return fmt.Errorf("queue figures %s: %w", key, err)
		}
		q, err := events.DecodeQueueStats(e.Value())
		if err != nil {
			return fmt.Errorf("queue figures %s: %w", key, err)
		}
		add(q)
	}
	return nil
}

// matchedWaits hands add every match formed since from, once per match
// id, reading at most max stored messages; capped says there were more.
// A match is read from its tickets' claims, each of which carries it
// (events.HeaderMatch), and from its record where one is written (a room
// that takes backfill, the matchers' -match-records); a match has a
// claim per ticket, and a match formed again after a redelivery is
// written again, hence once per id. Both buckets are read from their
// streams with an ordered consumer that starts at from: a bucket has no
// index by time, and listing its keys would read every match of the last
// hours.
func (s *session) matchedWaits(ctx context.Context, from time.Time, max int, add func(events.Match)) (capped bool, err error) {
	seen := map[string]bool{}
	once := func(m events.Match) {
		if !seen[m.MatchID] {
			seen[m.MatchID] = true
			add(m)
		}
	}
	read := 0
	for _, src := range []struct {
		bucket  string
		encoded func(jetstream.Msg) []byte
	}{
		{s.subj.ClaimsBucket(), func(msg jetstream.Msg) []byte { return []byte(msg.Headers().Get(events.HeaderMatch)) }},
		{s.subj.MatchesBucket(), jetstream.Msg.Data},
	} {
		if capped, err := s.readMatches(ctx, src.bucket, from, max, &read, src.encoded, once); capped || err != nil {
			return capped, err
		}
	}
	return false, nil
}

// readMatches hands add each match stored in bucket since from under a
// key without a dot, as encoded finds it in a message (none: not a
// match's), counting the messages in read; capped says read passed max.
// A claim's key is its ticket's id and a record's its match's id, which
// have no dot; the told marks ("told.<id>"), backfill keys, decisions
// and sent marks ("<id>.decided") have one, so "*" leaves them out. The
// stream and subject names are JetStream's for a bucket.
func (s *session) readMatches(ctx context.Context, bucket string, from time.Time, max int, read *int,
	encoded func(jetstream.Msg) []byte, add func(events.Match)) (capped bool, err error) {
	cons, err := s.js.OrderedConsumer(ctx, events.BucketStream(bucket), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"$KV." + bucket + ".*"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &from,
	})
	if err != nil {
		return false, fmt.Errorf("read matches in %s: %w", bucket, err)
	}
	for {
		batch, err := cons.FetchNoWait(min(500, max-*read+1))
		if err != nil {
			return false, fmt.Errorf("read matches in %s: %w", bucket, err)
		}
		n, pending := 0, uint64(1)
		for msg := range batch.Messages() {
			n++
			if meta, err := msg.Metadata(); err == nil {
				pending = meta.NumPending
			}
			if *read++; *read > max {
				return true, nil
			}
			// A delete marker, or a claim of no match, carries none.
			if m, err := decodeMatchRecord(encoded(msg)); err == nil {
				add(m)
			}
		}
		if err := batch.Error(); err != nil {
			return false, fmt.Errorf("read matches in %s: %w", bucket, err)
		}
		if n == 0 || pending == 0 {
			return false, nil // the window is read to its end
		}
	}
}

// percentilesOf ws (nearest rank), nil for none.
func percentilesOf(ws []time.Duration) *percentiles {
	if len(ws) == 0 {
		return nil
	}
	slices.Sort(ws)
	rank := func(p float64) int64 {
		i := int(p*float64(len(ws))+0.999999) - 1
		return ws[min(max(i, 0), len(ws)-1)].Milliseconds()
	}
	return &percentiles{Tickets: len(ws), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: ws[len(ws)-1].Milliseconds()}
}

func writeQueue(w io.Writer, out *queueOut) error {
	t := newTable(w, "SHARD", "MODE", "WAITING", "EXPECTED WAIT", "MATCHED/MIN", "UPDATED", "TICKETS MATCHED", "P50", "P90", "P99", "MAX")
	for _, r := range out.Rows {
		cells := []string{r.Shard, r.Mode, "", "", "", "", "", "", "", "", ""}
		if q := r.Stats; q != nil {
			cells[2], cells[3], cells[4], cells[5] = fmt.Sprint(q.Waiting), ms(q.ExpectedWaitMS, q.ExpectedWaitMS > 0), fmt.Sprint(q.Matched), at(q.UpdatedAt)
		}
		if p := r.Waited; p != nil {
			cells[6], cells[7], cells[8], cells[9], cells[10] = fmt.Sprint(p.Tickets), ms(p.P50, true), ms(p.P90, true), ms(p.P99, true), ms(p.Max, true)
		}
		t.row(cells...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	note := "percentiles: waits (created_at to match) of the tickets matched in the last " + out.Window + ", from the match records"
	if out.Window == "0s" {
		note = "percentiles: not read (-window 0)"
	}
	if out.Capped {
		note += " (capped: more matches than -max-matches; the oldest were read)"
	}
	_, err := fmt.Fprintln(w, note)
	return err
}
