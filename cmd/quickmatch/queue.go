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
// tickets matched in the window, read from the match records.
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
	// Window is how far back the match records were read.
	Window string     `json:"window"`
	Rows   []queueRow `json:"shards"`
	// Capped says the window held more matches than were read: the
	// percentiles are of the oldest MaxMatches of it.
	Capped bool `json:"capped,omitempty"`
}

// queueCmd shows, per shard and mode, what waits and for how long.
// Waiting and expected wait are the matcher's own figures (the queue
// bucket, events.QueueStats). The percentiles are not stored anywhere:
// they are computed here from the match records of the window (the
// matches bucket, written when each match is formed), as each ticket's
// wait from its created_at to its match's. So they are the waits of
// tickets that were matched, not of those still waiting (only their
// owner's memory holds those) nor of those that expired or were
// cancelled; a match undone afterwards still counts.
func queueCmd(fs *flag.FlagSet) runFunc {
	window := fs.Duration("window", time.Minute, "how far back matches count for the wait percentiles (the expected wait uses the last minute); 0 leaves them out")
	maxMatches := atLeastOne(100000)
	fs.Var(&maxMatches, "max-matches", "read at most this `number` of match records for the percentiles")
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

// matchedWaits hands add every match record stored since from, once per
// match id (a match formed again after a redelivery is written again),
// reading at most max records; capped says there were more. The records
// are read from the bucket's stream with an ordered consumer that starts
// at from: the bucket has no index by time, and listing its keys would
// read every match of the last hours.
func (s *session) matchedWaits(ctx context.Context, from time.Time, max int, add func(events.Match)) (capped bool, err error) {
	bucket := s.subj.MatchesBucket()
	// A match record's key is its id, which has no dot; decisions and sent
	// marks ("<id>.decided") have one, so "*" takes the records alone.
	// The stream and subject names are JetStream's for a bucket.
	cons, err := s.js.OrderedConsumer(ctx, events.BucketStream(bucket), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"$KV." + bucket + ".*"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &from,
	})
	if err != nil {
		return false, fmt.Errorf("read match records: %w", err)
	}
	seen := map[string]bool{}
	for read := 0; ; {
		batch, err := cons.FetchNoWait(min(500, max-read+1))
		if err != nil {
			return false, fmt.Errorf("read match records: %w", err)
		}
		n, pending := 0, uint64(1)
		for msg := range batch.Messages() {
			n++
			if meta, err := msg.Metadata(); err == nil {
				pending = meta.NumPending
			}
			if read++; read > max {
				return true, nil
			}
			m, err := decodeMatchRecord(msg.Data())
			if err != nil || seen[m.MatchID] {
				continue // a delete marker (empty), or a match seen already
			}
			seen[m.MatchID] = true
			add(m)
		}
		if err := batch.Error(); err != nil {
			return false, fmt.Errorf("read match records: %w", err)
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
