package matcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// intake consumes the shared intake consumer until ctx ends.
func (w *Worker) intake(ctx context.Context) error {
	cons, err := w.js.Consumer(ctx, w.subj.TicketsStream(), events.ConsumerMatcher)
	if err != nil {
		return fmt.Errorf("bind intake consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { w.admit(ctx, msg) },
		// A small prefetch: what a worker holds when it dies waits
		// MatcherAckWait to come back.
		jetstream.PullMaxMessages(64),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { w.log.Warn("intake consume", "err", err) }))
	if err != nil {
		return fmt.Errorf("consume tickets: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	w.settle.Wait() // every admitted ticket acked or naked
	return nil
}

// admit validates one ticket and puts it in its shard's pool, or ends it.
func (w *Worker) admit(ctx context.Context, msg jetstream.Msg) {
	if ctx.Err() != nil {
		_ = msg.Nak() // stopping: another worker takes it now
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error("ticket without metadata; dropped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	// The ticket's correlation and trace context go on every log line and
	// every message published for it.
	tmeta := events.MetaFromHeader(msg.Headers())
	ctx = events.WithMeta(ctx, tmeta)
	log := w.log.With("subject", msg.Subject(), "seq", meta.Sequence.Stream, "correlation_id", tmeta.CorrelationID)
	t, sh, err := w.decode(msg, meta)
	if err != nil {
		w.deadLetter(ctx, log, msg, meta, t, err)
		return
	}
	// Pipelined: the put into the pool is published without waiting, and
	// the ticket is acked when the pool's stream has stored it. Intake
	// does not wait a round trip per ticket; the publisher bounds what is
	// in flight (PublishAsyncMaxPending).
	pm, err := events.NewMsg(ctx, w.subj.Pool(sh.Region, sh.Tier), t.TicketID, t)
	var fut jetstream.PubAckFuture
	if err == nil {
		fut, err = w.js.PublishMsgAsync(pm)
	}
	if err != nil {
		log.Warn("pool ticket; will retry", "ticket_id", t.TicketID, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	w.settle.Add(1)
	go func() {
		defer w.settle.Done()
		select {
		case <-fut.Ok():
			w.met.tickets.WithLabelValues("admitted").Inc()
			_ = msg.Ack()
		case err := <-fut.Err():
			log.Warn("pool ticket; will retry", "ticket_id", t.TicketID, "err", err)
			_ = msg.NakWithDelay(time.Second)
		case <-time.After(w.cfg.PublishTimeout):
			log.Warn("pool ticket: no ack in time; will retry", "ticket_id", t.TicketID, "timeout", w.cfg.PublishTimeout)
			_ = msg.NakWithDelay(time.Second)
		}
	}()
}

// decode checks a ticket message completely and names what is wrong. When
// the ticket itself decoded but breaks a rule (wrong tier, unknown mode, a
// party too large), it is returned with the error, so its players can be
// told.
func (w *Worker) decode(msg jetstream.Msg, meta *jetstream.MsgMetadata) (events.Ticket, events.Shard, error) {
	region, tier, err := w.subj.ParseTicket(msg.Subject())
	if err != nil {
		return events.Ticket{}, events.Shard{}, err
	}
	t, err := events.DecodeTicket(msg.Data())
	if err != nil {
		return events.Ticket{}, events.Shard{}, err
	}
	if t.TicketID == "" {
		t.TicketID = events.DeriveTicketID(msg.Subject(), meta.Sequence.Stream, meta.Timestamp, msg.Data())
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = meta.Timestamp.UTC()
	}
	if err := errors.Join(t.CheckShard(region, tier, w.cfg.Regions, w.cfg.Tiers), t.CheckTime(w.now())); err != nil {
		return t, events.Shard{}, err
	}
	mode, ok := w.modes[t.Mode]
	if !ok {
		return t, events.Shard{}, fieldError("mode", fmt.Sprintf("unknown mode %q", t.Mode))
	}
	if n := len(t.Players()); n > mode.TeamSize {
		return t, events.Shard{}, fieldError("party", fmt.Sprintf("%d players do not fit a team of %d in mode %q", n, mode.TeamSize, mode.Name))
	}
	for r := range t.LatenciesMS {
		if !w.cfg.Regions.Has(r) {
			return t, events.Shard{}, fieldError("latencies_ms."+r, "unknown region")
		}
	}
	return t, events.Shard{Region: region, Tier: tier}, nil
}

func fieldError(field, reason string) error {
	return &events.ValidationError{Kind: "ticket", Fields: []events.FieldError{{Field: field, Reason: reason}}}
}

// deadLetter records a ticket that can never be matched and terminates it.
// If the ticket named its players (t is set), they are told it failed and
// why, through a claim like every other outcome.
func (w *Worker) deadLetter(ctx context.Context, log *slog.Logger, msg jetstream.Msg, meta *jetstream.MsgMetadata, t events.Ticket, cause error) {
	pctx, cancel := context.WithTimeout(ctx, w.cfg.PublishTimeout)
	defer cancel()
	dl := events.NewDeadLetter(Source, msg.Subject(), meta.Sequence.Stream, msg.Data(), cause, w.now())
	if err := w.pub.DeadLetter(pctx, dl); err != nil {
		log.Error("publish dead letter; ticket will be retried", "reason", cause, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	w.met.tickets.WithLabelValues("dead_letter").Inc()
	log.Warn("ticket dead-lettered", "reason", cause)
	if t.TicketID != "" {
		won, _, err := w.claims.Claim(pctx, t.TicketID, events.OwnerFailed)
		if err != nil {
			log.Error("claim rejected ticket; will retry", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		for _, p := range t.Players() {
			if !won {
				break
			}
			r := events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusFailed, Reason: "ticket rejected: " + cause.Error()}
			if err := w.pub.Result(pctx, r); err != nil {
				log.Error("tell player of rejected ticket; will retry", "player", p, "err", err)
				_ = msg.NakWithDelay(time.Second)
				return
			}
		}
	}
	_ = msg.TermWithReason(dl.Reason)
}
