package matcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/modes"
)

// intake reads ticket messages for a worker's shards and its stray sweep:
// it decodes and checks them, takes them in as their players' live
// ticket, and dead-letters what can never be matched. It holds no shard
// state, so every runner shares the worker's.
type intake struct {
	subj       events.Subjects
	regions    events.Regions
	tiers      events.Tiers
	modes      modes.Set
	pub        *events.Publisher
	claims     *events.Claims
	players    *events.Players
	superseder superseder
	met        *metrics
	// now is the worker's clock (Worker.clock).
	now     func() time.Time
	timeout time.Duration
	// rejecting counts the rejected tickets being dead-lettered.
	rejecting sync.WaitGroup
}

// decode checks a ticket message completely and names what is wrong. When
// the ticket itself decoded but breaks a rule (wrong tier, unknown mode, a
// party too large), it is returned with the error, so its players can be
// told. A ticket without an id gets one derived from its message, and one
// without a creation time (or one a little ahead) gets the time the stream
// stored it: the same on every redelivery.
func (in *intake) decode(subject string, seq uint64, stored time.Time, data []byte) (events.Ticket, modes.Mode, error) {
	region, tier, err := in.subj.ParseTicket(subject)
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
	if err := t.CheckShard(region, tier, in.regions, in.tiers); err != nil {
		return t, modes.Mode{}, err
	}
	mode, ok := in.modes[t.Mode]
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
		if !in.regions.Has(r) {
			return t, mode, fieldError("latencies_ms."+r, "unknown region")
		}
	}
	return t, mode, nil
}

// visitor reads a ticket another shard offered (offerer.offer wrote it).
func (in *intake) visitor(msg jetstream.Msg) (events.Ticket, modes.Mode, error) {
	t, err := events.DecodeTicket(msg.Data())
	if err != nil {
		return t, modes.Mode{}, err
	}
	mode, ok := in.modes[t.Mode]
	if !ok {
		// Only a config drift between workers gets here.
		return t, mode, fieldError("mode", fmt.Sprintf("unknown mode %q", t.Mode))
	}
	if t.TicketID == "" {
		return t, mode, fieldError("ticket_id", "missing in a visitor")
	}
	return t, mode, nil
}

func fieldError(field, reason string) error {
	return &events.ValidationError{Kind: "ticket", Fields: []events.FieldError{{Field: field, Reason: reason}}}
}

// take takes lt in as the live ticket of its players (events.Players),
// superseding their earlier undecided ticket. msg is lt's message, nil
// for a ticket taken in again after a commit gave its claim back (its id
// is bound to its players already). refused: lt's id is another player's
// ticket's; lt was dead-lettered and is to be terminated.
func (in *intake) take(ctx context.Context, log *slog.Logger, lt events.LiveTicket, msg jetstream.Msg, seq uint64, t events.Ticket) (taken events.Taken, refused bool, err error) {
	tctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	taken, err = in.players.Take(tctx, lt, in.superseder.superseded)
	if errors.Is(err, events.ErrTicketIDTaken) && msg != nil {
		// Its id is another player's ticket's (a publisher reusing
		// it): this is not that ticket, so it is dead-lettered
		// without touching that ticket's claim, and its own players
		// are told.
		meta := events.MetaFromHeader(msg.Headers())
		log := log.With("subject", msg.Subject(), "seq", seq, "ticket_id", lt.TicketID, "correlation_id", meta.CorrelationID)
		cause := fieldError("ticket_id", "already the id of a ticket of other players")
		err = in.deadLetter(events.WithMeta(ctx, meta), log, msg.Subject(), seq, msg.Data(), t, cause, false)
		refused = err == nil
	}
	return taken, refused, err
}

// deadLetter records a ticket that can never be matched. If the ticket
// named its players (t is set), they are told it failed and why, through a
// claim like every other outcome; without claim (the message is not the
// ticket its id names: the claim is that ticket's), they are told with no
// claim. An error means the ticket must be tried again later; nil, that it
// may be dropped.
func (in *intake) deadLetter(ctx context.Context, log *slog.Logger, subject string, seq uint64, data []byte, t events.Ticket, cause error, claim bool) error {
	pctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	dl := events.NewDeadLetter(Source, subject, seq, data, cause, in.now())
	if err := in.pub.DeadLetter(pctx, dl); err != nil {
		log.Error("publish dead letter; ticket will be retried", "reason", cause, "err", err)
		return err
	}
	in.met.tickets.WithLabelValues("dead_letter").Inc()
	log.Warn("ticket dead-lettered", "reason", cause)
	if t.TicketID == "" {
		return nil
	}
	won := true
	if claim {
		var err error
		if won, _, err = in.claims.Claim(pctx, t.TicketID, events.OwnerFailed); err != nil {
			log.Error("claim rejected ticket; will retry", "err", err)
			return err
		}
	}
	if !won {
		return nil
	}
	players := t.Players()
	rs := make([]events.Result, len(players))
	for i, p := range players {
		rs[i] = events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusFailed, Reason: "ticket rejected: " + cause.Error()}
	}
	if err := in.pub.Results(pctx, rs); err != nil {
		log.Error("tell players of rejected ticket; will retry", "err", err)
		return err
	}
	return nil
}

// reject dead-letters a ticket message off the shard's goroutine (it waits
// on JetStream) and terminates it, or naks it for a retry.
func (in *intake) reject(ctx context.Context, log *slog.Logger, msg jetstream.Msg, meta *jetstream.MsgMetadata, t events.Ticket, cause error) {
	in.rejecting.Add(1)
	go func() {
		defer in.rejecting.Done()
		if err := in.deadLetter(ctx, log, msg.Subject(), meta.Sequence.Stream, msg.Data(), t, cause, true); err != nil {
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.TermWithReason(cause.Error())
	}()
}
