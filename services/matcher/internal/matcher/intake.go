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
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// intake reads ticket messages for a worker's shards and its stray sweep:
// it decodes and checks them, takes them in as their players' live
// ticket, and dead-letters what can never be matched. It holds no shard
// state, so every runner shares the worker's.
type intake struct {
	subj       events.Subjects
	regions    events.Regions
	tiers      events.Tiers
	pub        *events.Publisher
	claims     *events.Claims
	players    *events.Players
	superseder superseder
	seals      *events.Seals // of tickets taken first (takenFirst); nil: none trusted
	fresh      time.Duration // how long a seal is trusted after its storing: sealFresh
	unverified sync.Once     // logs the first seal that does not verify
	met        *metrics
	// now is the worker's clock (Worker.clock).
	now     func() time.Time
	timeout time.Duration
	// rejecting counts the rejected tickets being dead-lettered.
	rejecting sync.WaitGroup
	// rulesRetry, if set, replaces the constant (tests).
	rulesRetry time.Duration
}

// A ticket the rule set refuses although it was checked under another
// (events.HeaderRules: a frontend whose copy of the rule set file changed
// first) waits for that set: it is tried again every rulesRetry until it
// is rulesWait old, by the time the stream stored it, and only then
// refused.
const (
	// rulesWait covers a rollout of the rule set file: kubelet refreshes
	// a ConfigMap volume in each pod on its own sync (its default
	// syncFrequency, 1 minute, plus its cache's delay: about a minute
	// apart at worst), a service reads the file within one -rules-reload
	// (rules.DefaultReload, 5 s), and a runner puts it in force within a
	// sweep. Two minutes is that with as much again to spare. A stamp
	// that names rules never coming (a stale frontend, a hostile
	// publisher) holds its own ticket's refusal back this long and no
	// longer.
	rulesWait = 2 * time.Minute
	// rulesRetry is one reload interval, the soonest the matcher's set
	// can change: about 24 tries of a waiting ticket in all, each one
	// decode and one claim read.
	rulesRetry = rules.DefaultReload
)

// decode checks a ticket message completely, against set, and names what
// is wrong. When the ticket itself decoded but breaks a rule (wrong tier,
// anything the rule set refuses: an unknown mode, a party too large,
// latencies for a region not served, attributes), it is returned with the
// error, so its players can be told. A ticket without an id gets one
// derived from its message, and one without a creation time (or one a
// little ahead) gets the time the stream stored it: the same on every
// redelivery.
func (in *intake) decode(set *rules.Set, subject string, seq uint64, stored time.Time, data []byte) (events.Ticket, *rules.Mode, error) {
	region, tier, err := in.subj.ParseTicket(subject)
	if err != nil {
		return events.Ticket{}, nil, err
	}
	t, err := events.DecodeTicket(data)
	if err != nil {
		return events.Ticket{}, nil, err
	}
	if t.TicketID == "" {
		t.TicketID = events.DeriveTicketID(subject, seq, stored, data)
	}
	if err := t.CheckShard(region, tier, in.regions, in.tiers); err != nil {
		return t, nil, err
	}
	// The one statement of what the rule set refuses: the frontend calls
	// it too, so a ticket it accepted is not refused here (but for a
	// rule set changed in between: waitForRules).
	if err := set.Check(&t, in.regions); err != nil {
		return t, nil, &ruleSetRefusal{err: err, version: set.Version()}
	}
	mode, _ := set.Mode(t.Mode) // Check found it
	// created_at is bounded by the time the stream stored the ticket (see
	// events.Ticket.BoundCreated): left out or a little ahead, it is that
	// time; far ahead, or older than the mode's max wait and a slack, the
	// ticket is rejected.
	if err := t.BoundCreated(stored, time.Duration(mode.MaxWait)); err != nil {
		return t, mode, err
	}
	return t, mode, nil
}

// ruleSetRefusal is a rule set's refusal of a ticket (decode), with the
// version of the set that refused it (waitForRules). It reads as the
// refusal itself, so a dead letter and the players are told the same.
type ruleSetRefusal struct {
	err     error
	version string
}

func (e *ruleSetRefusal) Error() string { return e.err.Error() }
func (e *ruleSetRefusal) Unwrap() error { return e.err }

// errOtherRules marks a visitor this worker's rule set refuses although
// its home shard took it in: the two workers' rule sets differ, for the
// moment a reload takes to reach both (or for good, when they were given
// different files).
var errOtherRules = errors.New("visitor refused by this worker's rule set")

// visitor reads a ticket another shard offered (offerer.offer wrote it)
// and checks it against set. A malformed one is an error like a bad
// ticket's; one the rule set refuses is errOtherRules: its home shard
// accepted it and keeps it, so it is only not matched here.
func (in *intake) visitor(set *rules.Set, msg jetstream.Msg) (events.Ticket, *rules.Mode, error) {
	t, err := events.DecodeTicket(msg.Data())
	if err != nil {
		return t, nil, err
	}
	if t.TicketID == "" {
		return t, nil, fieldError("ticket_id", "missing in a visitor")
	}
	if err := set.Check(&t, in.regions); err != nil {
		return t, nil, fmt.Errorf("%w: %w", errOtherRules, err)
	}
	mode, _ := set.Mode(t.Mode)
	return t, mode, nil
}

func fieldError(field, reason string) error {
	return &events.ValidationError{Kind: "ticket", Fields: []events.FieldError{{Field: field, Reason: reason}}}
}

// errLateDecided: a ticket that came late has an outcome already.
var errLateDecided = errors.New("came late with an outcome already")

// take takes lt in as the live ticket of its players (events.Players),
// superseding their earlier undecided ticket. With late (a ticket that
// came past its max wait) it reads lt's claim first and stops at one
// (errLateDecided), and takes with TakeLate, stopping at a player's
// other undecided ticket (events.ErrWouldSupersede). msg is lt's message,
// nil for a ticket taken in again after a commit gave its claim back
// (its id is bound to its players already). refused: lt's id is another
// player's ticket's; lt was dead-lettered and is to be terminated.
func (in *intake) take(ctx context.Context, log *slog.Logger, lt events.LiveTicket, msg jetstream.Msg, seq uint64, t events.Ticket, late bool) (taken events.Taken, refused bool, err error) {
	tctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	if late {
		taken, err = in.players.TakeLate(tctx, lt, in.superseder.superseded)
		if err == nil && taken.Live {
			// Decided while on its way (expired or cancelled by its
			// frontend, matched by another owner): Take says live while
			// its players' entry names it, without reading its claim,
			// and a match around it would fail at that claim. Read after
			// the take checked that the id is its players'
			// (ErrTicketIDTaken): another ticket's claim is not its own.
			var owner string
			if owner, err = in.claims.Owner(tctx, lt.TicketID); err == nil && owner != "" {
				err = fmt.Errorf("%w (%s)", errLateDecided, owner)
			}
		}
	} else {
		taken, err = in.players.Take(tctx, lt, in.superseder.superseded)
	}
	if errors.Is(err, events.ErrTicketIDTaken) && msg != nil {
		// Its id is another player's ticket's (a publisher reusing
		// it): this is not that ticket, so it is dead-lettered
		// without touching that ticket's claim, and its own players
		// are told.
		meta := events.MetaFromHeader(msg.Headers())
		log := log.With("subject", msg.Subject(), "seq", seq, "ticket_id", lt.TicketID, "correlation_id", meta.CorrelationID)
		cause := fieldError("ticket_id", "already the id of a ticket of other players")
		if dlErr := in.deadLetter(events.WithMeta(ctx, meta), log, msg.Subject(), seq, msg.Data(), t, cause, false); dlErr != nil {
			// Still ErrTicketIDTaken, so that no caller ends the
			// ticket by its id: the id's claim is the other ticket's.
			return taken, false, fmt.Errorf("%w; dead letter: %w", err, dlErr)
		}
		refused = true
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
	dl.KeepMeta(events.MetaFrom(ctx)) // the message's (every caller's ctx carries it): a replay follows the same flow
	if err := in.pub.DeadLetter(pctx, dl); err != nil {
		log.Error("publish dead letter; ticket will be retried", "reason", cause, "err", err)
		return err
	}
	in.met.tickets.WithLabelValues("dead_letter").Inc()
	log.Warn("ticket dead-lettered", "reason", cause)
	if t.TicketID == "" {
		return nil
	}
	reason := "ticket rejected: " + cause.Error()
	if !claim {
		// Its id is another ticket's (or claims nothing): the claim and
		// its told mark are that ticket's, so its players are told
		// here, unmarked.
		return in.pub.Results(pctx, rejected(t, reason))
	}
	won, owner, err := in.claims.Claim(pctx, t.TicketID, events.OwnerFailed)
	if err != nil {
		log.Error("claim rejected ticket; will retry", "err", err)
		return err
	}
	if !won {
		reason = "" // the outcome that won, told as its claimer would
	}
	// Told here whoever claimed it (its claimer may have failed to tell),
	// but for a match (claimRefused followed it).
	if err := in.tell(pctx, subject, t, owner, reason); err != nil {
		log.Error("tell players of rejected ticket; will retry", "owner", owner, "err", err)
		return err
	}
	return nil
}

// reject dead-letters a ticket message off the shard's goroutine (it waits
// on JetStream) and terminates it, or naks it for a retry. A ticket a
// match holds is that match's, however it is refused now (a rule set
// reloaded since, say): claimRefused follows the match instead.
func (in *intake) reject(ctx context.Context, log *slog.Logger, rec *recoverer, msg jetstream.Msg, meta *jetstream.MsgMetadata, t events.Ticket, cause error) {
	in.rejecting.Add(1)
	go func() {
		defer in.rejecting.Done()
		if in.waitForRules(ctx, log, msg, meta, t.TicketID, cause) {
			return
		}
		switch in.claimRefused(ctx, log, rec, t.TicketID) {
		case refusedMatched:
			_ = msg.Ack()
			return
		case refuseLater:
			nakLater(msg, nakDelay)
			return
		case refusedDecided:
			if underOtherRules(msg, cause) {
				// A ticket the frontend took, refused here only for a
				// rule set on its way, that its player cancelled (or
				// the frontend ended) meanwhile: nothing wrong with the
				// message, and its players were told. Any other refused
				// message is a dead letter whoever decided its ticket.
				if err := in.tellDecided(ctx, msg.Subject(), t); err != nil {
					log.Error("tell players of a ticket decided elsewhere; will retry", "ticket_id", t.TicketID, "err", err)
					nakLater(msg, nakDelay)
					return
				}
				in.met.tickets.WithLabelValues("decided_elsewhere").Inc()
				log.Info("ticket waiting for a rule set decided elsewhere; dropped", "ticket_id", t.TicketID)
				_ = msg.Ack()
				return
			}
		}
		if err := in.deadLetter(ctx, log, msg.Subject(), meta.Sequence.Stream, msg.Data(), t, cause, true); err != nil {
			nakLater(msg, nakDelay)
			return
		}
		_ = msg.TermWithReason(cause.Error())
	}()
}

// tellDecided tells the players of ticket t the outcome its claim holds,
// if not a match's and not told yet (tell): whoever claimed it may have
// failed to.
func (in *intake) tellDecided(ctx context.Context, subject string, t events.Ticket) error {
	cctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	owner, err := in.claims.Owner(cctx, t.TicketID)
	if err != nil {
		return err
	}
	return in.tell(cctx, subject, t, owner, "")
}

// tell tells the players of ticket t, read from a message on subject,
// the outcome of its claim, held by owner (events.Claims.Tell). The
// subject names the shard a superseded ticket's cancel notices go to
// (none for a stray's, which no shard consumes).
func (in *intake) tell(ctx context.Context, subject string, t events.Ticket, owner, reason string) error {
	region, tier, _ := in.subj.ParseTicket(subject)
	lt := events.LiveTicket{TicketID: t.TicketID, Players: t.Players(), Region: region, Tier: tier, Mode: t.Mode, CreatedAt: t.CreatedAt}
	return in.claims.Tell(ctx, events.Telling{Ticket: lt, Owner: owner, Reason: reason}, in.superseder.superseded)
}

// waitForRules naks, to be tried again after a reload, a ticket this
// matcher's rule set refused that was checked under another set
// (events.HeaderRules) and is younger than rulesWait: that set is likely
// on its way here. It reports whether it did. Only a free ticket waits:
// one a match holds or one decided is settled at once, as any refused
// ticket (claimRefused). A ticket without the stamp, or stamped with this
// matcher's set, is judged at once. The stamp is the publisher's word,
// so it buys no more than a wait: the ticket is read again, never
// accepted, and it costs its own player rulesWait at most and the shard
// one decode and one claim read per rulesRetry.
func (in *intake) waitForRules(ctx context.Context, log *slog.Logger, msg jetstream.Msg, meta *jetstream.MsgMetadata, ticketID string, cause error) bool {
	if !underOtherRules(msg, cause) || in.now().Sub(meta.Timestamp) >= rulesWait {
		return false
	}
	if ticketID != "" {
		cctx, cancel := context.WithTimeout(ctx, in.timeout)
		owner, err := in.claims.Owner(cctx, ticketID)
		cancel()
		if err == nil && owner != "" {
			return false
		}
		// Unread, the claim is read again at the next try.
	}
	if meta.NumDelivered == 1 {
		log.Info("ticket refused by this matcher's rule set but checked under another; waiting for it",
			"ticket_id", ticketID, "stamp", msg.Headers().Get(events.HeaderRules), "reason", cause, "for", rulesWait)
	}
	retry := rulesRetry
	if in.rulesRetry > 0 {
		retry = in.rulesRetry
	}
	nakLater(msg, retry)
	return true
}

// underOtherRules reports whether cause is this matcher's rule set
// refusing msg's ticket, which was checked under another set
// (events.HeaderRules).
func underOtherRules(msg jetstream.Msg, cause error) bool {
	var refusal *ruleSetRefusal
	stamp := msg.Headers().Get(events.HeaderRules)
	return errors.As(cause, &refusal) && stamp != "" && stamp != refusal.version
}

// refusal is what claiming a refused ticket found (claimRefused).
type refusal int

const (
	refuse         refusal = iota // claimed failed: dead-letter it
	refusedDecided                // decided by another owner, not a match (cancelled, ...)
	refusedMatched                // a match holds it and is out: its players were told
	refuseLater                   // its match is undecided, or no claim could be made
)

// claimRefused claims a refused ticket failed before it is dead-lettered
// (deadLetter's claim then finds it won). A claim held by a match is
// followed as ender.end follows it: the match may be a dead matcher's,
// decided or not, and its tickets, redelivered, are all that can lead
// anyone to it (recoverMatch); dead-lettering them would strand it and
// them. Released (undone), the ticket is free and claimed again.
func (in *intake) claimRefused(ctx context.Context, log *slog.Logger, rec *recoverer, ticketID string) refusal {
	if ticketID == "" {
		return refuse // nothing to claim: deadLetter tells nobody
	}
	cctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	for range 2 { // the second claim after a dead match was released
		won, cur, err := in.claims.Claim(cctx, ticketID, events.OwnerFailed)
		if err != nil {
			log.Error("claim rejected ticket; will retry", "ticket_id", ticketID, "err", err)
			return refuseLater
		}
		id, isMatch := events.OwnerMatchID(cur)
		switch {
		case won:
			return refuse
		case !isMatch:
			return refusedDecided
		}
		switch rec.recoverMatch(ctx, id, ticketID) {
		case recovered:
			in.met.tickets.WithLabelValues("decided_elsewhere").Inc()
			log.Info("refused ticket is a match's; dropped", "ticket_id", ticketID, "match_id", id)
			return refusedMatched
		case undecided:
			return refuseLater // decide later, when the match is out or undone
		}
	}
	return refuseLater
}
