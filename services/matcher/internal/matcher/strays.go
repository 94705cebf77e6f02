package matcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// strays dead-letters the stray tickets every Config.StraySweep until ctx
// ends.
func (w *Worker) strays(ctx context.Context) error {
	tick := time.NewTicker(w.cfg.StraySweep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := w.sweepStrays(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("look for stray tickets; will look again", "err", err)
			}
		}
	}
}

// sweepStrays dead-letters the tickets on every subject of the tickets
// stream that is not a shard's. Workers may do it side by side: the dead
// letter's id (subject and sequence) stores it once, and deleting a
// message already deleted is no harm.
//
// A stored subject is data, never a filter: a ticket published on a
// literal `matchmaking.*.gold` or `matchmaking.>` is a stray like any
// other, and the shards' tickets those strings would match as filters are
// not touched. Each stray subject is searched with a filter of our own
// that covers it (events.CoveringFilter), and only a message whose own
// subject is a stray subject is dead-lettered and deleted, by its
// sequence. The strays one filter covers share one search per sweep, so
// a sweep reads each message once however many stray subjects there are.
// The search resumes where the last sweep stopped (strayCursor), so a
// stray behind many waiting tickets of the shards its filter covers is
// reached within a few sweeps, at strayReads reads per filter each.
func (w *Worker) sweepStrays(ctx context.Context) error {
	st, err := w.js.Stream(ctx, w.subj.TicketsStream())
	if err != nil {
		return fmt.Errorf("tickets stream: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(w.subj.AllTickets()))
	if err != nil {
		return fmt.Errorf("tickets stream subjects: %w", err)
	}
	// The stray subjects by the filter that covers them, with how many
	// messages each has.
	strays := map[string]map[string]uint64{}
	for subject, n := range info.State.Subjects {
		if n == 0 || w.shardSubjects[subject] {
			continue
		}
		f := events.CoveringFilter(subject)
		if strays[f] == nil {
			strays[f] = map[string]uint64{}
		}
		strays[f][subject] = n
	}
	for filter := range w.strayCursor {
		if strays[filter] == nil {
			delete(w.strayCursor, filter) // none left
		}
	}
	var errs []error
	for filter, subjects := range strays {
		// One filter's failure does not stop the others.
		errs = append(errs, w.sweepStray(ctx, st, filter, subjects))
	}
	return errors.Join(errs...)
}

// strayReads bounds the messages one sweep reads for one covering filter.
const strayReads = 1000

// sweepStray dead-letters the messages of filter's search stored on
// exactly one of subjects (each with how many messages it has).
func (w *Worker) sweepStray(ctx context.Context, st jetstream.Stream, filter string, subjects map[string]uint64) error {
	seq := max(w.strayCursor[filter], 1)
	var left uint64
	for _, n := range subjects {
		left += n
	}
	for range strayReads {
		if left == 0 {
			break
		}
		raw, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			seq = 1 // the end: the next sweep starts over
			break
		}
		if err != nil {
			return fmt.Errorf("read stray tickets under %s: %w", filter, err)
		}
		w.met.strayReads.Inc()
		seq = raw.Sequence + 1
		subject := raw.Subject
		if _, stray := subjects[subject]; !stray {
			continue // a shard's subject the filter covers: not a stray
		}
		left--
		log := w.log.With("subject", subject, "seq", raw.Sequence)
		// The ticket is read as a shard would, so the reason names
		// the region or tier, and the players it names are told.
		t, _, cause := w.in.decode(w.rules.Get(), subject, raw.Sequence, raw.Time, raw.Data)
		if cause == nil {
			cause = fieldError("subject", "no shard of this deployment consumes "+subject)
		}
		mctx := events.WithMeta(ctx, events.MetaFromHeader(raw.Header)) // kept in the dead letter
		if err := w.in.deadLetter(mctx, log, subject, raw.Sequence, raw.Data, t, cause, true); err != nil {
			return err
		}
		if err := st.DeleteMsg(ctx, raw.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("remove dead-lettered ticket %d: %w", raw.Sequence, err)
		}
	}
	w.strayCursor[filter] = seq
	return nil
}
