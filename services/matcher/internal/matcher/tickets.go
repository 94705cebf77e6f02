package matcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/modes"
)

// strayEvery is how often a worker looks for tickets on subjects no
// shard consumes (a region or tier this deployment does not serve, a
// malformed subject): published by hand, they would otherwise sit in the
// tickets stream unanswered until it ages them out.
const strayEvery = 2 * time.Second

// strays dead-letters the stray tickets every strayEvery until ctx ends.
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
		t, _, cause := w.decode(subject, raw.Sequence, raw.Time, raw.Data)
		if cause == nil {
			cause = fieldError("subject", "no shard of this deployment consumes "+subject)
		}
		if err := w.deadLetter(ctx, log, subject, raw.Sequence, raw.Data, t, cause, true); err != nil {
			return err
		}
		if err := st.DeleteMsg(ctx, raw.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("remove dead-lettered ticket %d: %w", raw.Sequence, err)
		}
	}
	w.strayCursor[filter] = seq
	return nil
}

// decode checks a ticket message completely and names what is wrong. When
// the ticket itself decoded but breaks a rule (wrong tier, unknown mode, a
// party too large), it is returned with the error, so its players can be
// told. A ticket without an id gets one derived from its message, and one
// without a creation time (or one a little ahead) gets the time the stream
// stored it: the same on every redelivery.
func (w *Worker) decode(subject string, seq uint64, stored time.Time, data []byte) (events.Ticket, modes.Mode, error) {
	region, tier, err := w.subj.ParseTicket(subject)
	if err != nil {
		return events.Ticket{}, modes.Mode{}, err
	}
	t, err := events.DecodeTicket(data)
	if err != nil {
		return events.Ticket{}, modes.Mode{}, err
	}
	if t.TicketID == "" {
		t.TicketID = events.DeriveTicketID(subject, seq, stored, data)
	}
	if err := t.CheckShard(region, tier, w.cfg.Regions, w.cfg.Tiers); err != nil {
		return t, modes.Mode{}, err
	}
	mode, ok := w.modes[t.Mode]
	if !ok {
		return t, mode, fieldError("mode", fmt.Sprintf("unknown mode %q", t.Mode))
	}
	// created_at is bounded by the time the stream stored the ticket (see
	// events.Ticket.BoundCreated): left out or a little ahead, it is that
	// time; far ahead, or older than the mode's max wait and a slack, the
	// ticket is rejected.
	if err := t.BoundCreated(stored, time.Duration(mode.MaxWait)); err != nil {
		return t, mode, err
	}
	if n := len(t.Players()); n > mode.TeamSize {
		return t, mode, fieldError("party", fmt.Sprintf("%d players do not fit a team of %d in mode %q", n, mode.TeamSize, mode.Name))
	}
	for r := range t.LatenciesMS {
		if !w.cfg.Regions.Has(r) {
			return t, mode, fieldError("latencies_ms."+r, "unknown region")
		}
	}
	return t, mode, nil
}

func fieldError(field, reason string) error {
	return &events.ValidationError{Kind: "ticket", Fields: []events.FieldError{{Field: field, Reason: reason}}}
}

// deadLetter records a ticket that can never be matched. If the ticket
// named its players (t is set), they are told it failed and why, through a
// claim like every other outcome; without claim (the message is not the
// ticket its id names: the claim is that ticket's), they are told with no
// claim. An error means the ticket must be tried again later; nil, that it
// may be dropped.
func (w *Worker) deadLetter(ctx context.Context, log *slog.Logger, subject string, seq uint64, data []byte, t events.Ticket, cause error, claim bool) error {
	pctx, cancel := context.WithTimeout(ctx, w.cfg.PublishTimeout)
	defer cancel()
	dl := events.NewDeadLetter(Source, subject, seq, data, cause, w.now())
	if err := w.pub.DeadLetter(pctx, dl); err != nil {
		log.Error("publish dead letter; ticket will be retried", "reason", cause, "err", err)
		return err
	}
	w.met.tickets.WithLabelValues("dead_letter").Inc()
	log.Warn("ticket dead-lettered", "reason", cause)
	if t.TicketID == "" {
		return nil
	}
	won := true
	if claim {
		var err error
		if won, _, err = w.claims.Claim(pctx, t.TicketID, events.OwnerFailed); err != nil {
			log.Error("claim rejected ticket; will retry", "err", err)
			return err
		}
	}
	for _, p := range t.Players() {
		if !won {
			break
		}
		r := events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusFailed, Reason: "ticket rejected: " + cause.Error()}
		if err := w.pub.Result(pctx, r); err != nil {
			log.Error("tell player of rejected ticket; will retry", "player", p, "err", err)
			return err
		}
	}
	return nil
}

// reject dead-letters a ticket message off the shard's goroutine (it waits
// on JetStream) and terminates it, or naks it for a retry.
func (w *Worker) reject(ctx context.Context, log *slog.Logger, msg jetstream.Msg, meta *jetstream.MsgMetadata, t events.Ticket, cause error) {
	w.settle.Add(1)
	go func() {
		defer w.settle.Done()
		if err := w.deadLetter(ctx, log, msg.Subject(), meta.Sequence.Stream, msg.Data(), t, cause, true); err != nil {
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.TermWithReason(cause.Error())
	}()
}
