package tickets

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// Create validates req, starts following the player's results, makes the
// ticket its players' live ticket unless that could end a ticket of
// theirs still waiting (TakeFirst), then stores the ticket record and
// publishes the ticket, the two pipelined (storeAndQueue), and, if it was
// not taken first, takes it (queueThenTake; a ticket its caller named is
// stored first, then taken and published in the same order: createKeyed),
// all before it answers. With an idempotency key
// (or a client ticket id) a repeated request gets the same ticket back; the
// publish is repeated too, which JetStream's duplicate window stores once,
// so a request whose first attempt died between the record and the publish
// still gets its ticket queued.
//
// Who may ask for what: a player caller queues for themself alone (a
// request naming no player gets the caller's id; Authorize), and may
// not choose the ticket id (a chosen id names a ticket for everyone, so a
// player who guessed or saw one could otherwise replay it); the server
// role may do all of it. An idempotency key is scoped to its caller: the
// ticket id is a hash of the caller and the key, so the same key from
// another caller names another ticket.
func (s *Service) Create(ctx context.Context, caller identity.Caller, req Request, idempotencyKey string) (View, error) {
	rec, set, err := s.newRecord(caller, req, idempotencyKey)
	if err != nil {
		return View{}, err
	}
	keyed := rec.RequestHash != ""
	t, shard := rec.Ticket, rec.Shard
	if err := s.admit(shard); err != nil {
		// A drained or full shard takes no new ticket; a repeat of one it
		// took is no new ticket.
		if keyed {
			if v, found, rerr := s.repeat(ctx, rec); found || rerr != nil {
				return v, rerr
			}
		}
		return View{}, err
	}
	if keyed {
		return s.createKeyed(ctx, rec, set.Version())
	}
	// Tracked before anything is written for it, so that none of its
	// results is missed (its take may tell its players). No round trip:
	// the tracker's one subscription is the frontend's.
	if err := s.tracker.Track(ctx, &t, &results.Creation{Shard: shard, Mode: t.Mode, Players: t.Players()}); err != nil {
		return View{}, err
	}
	// Taken before it is queued when that ends no waiting ticket
	// (events.Players.TakeFirstFresh: TakeFirst for an id made just now,
	// so its claim is not read): its shard's owner then finds it live
	// already (one read per player), instead of racing this take with its
	// own, which cost both sides writes and reads again (BENCHMARKS.md,
	// "Fourth round"). A take that fails has queued nothing. An entry it
	// made names a ticket that may never be queued; the player's next
	// ticket replaces it, and it ended nothing of theirs.
	first, live, err := s.takeFirst(ctx, rec, s.players.TakeFirstFresh) // its id is newTicketID's
	if err != nil {
		return View{}, err
	}
	if !first {
		return s.queueThenTake(ctx, rec, set.Version())
	}
	if _, err := s.storeAndQueue(ctx, rec, set.Version(), true, live); err != nil {
		s.tracker.Untrack(context.WithoutCancel(ctx), t.TicketID)
		return View{}, err
	}
	return ViewOf(rec, nil), nil
}

// takeFirst makes rec its players' live ticket before it is queued,
// unless that could end a ticket of theirs not ended yet (waiting, or in
// a match not decided published: events.Players.TakeFirst's
// ErrWouldSupersede). Then first is false, no ticket of theirs was ended,
// and the caller queues the ticket and takes it after. A take that
// fails untracks the ticket. takeWith is events.Players.TakeFirst, or
// TakeFirstFresh for an id the frontend just made.
//
// live is whether the take made the ticket its players' live ticket: it
// may end the ticket itself instead (older than a player's live ticket,
// by created_at: another frontend's clock ahead of this one's), and
// then the ticket is queued unsealed, so that its shard's owner reads it
// and drops it (review R9). Its client still hears "queued", as before.
func (s *Service) takeFirst(ctx context.Context, rec Record, takeWith takeFunc) (first, live bool, err error) {
	taken, err := takeWith(ctx, rec.live(), s.tellSuperseded)
	switch {
	case errors.Is(err, events.ErrWouldSupersede):
		return false, false, nil
	case err != nil:
		s.tracker.Untrack(context.WithoutCancel(ctx), rec.Ticket.TicketID)
		return false, false, fmt.Errorf("take ticket %s: %w", rec.Ticket.TicketID, err)
	}
	return true, taken.Live, nil
}

// takeFunc is a way to take a ticket first (events.Players).
type takeFunc func(context.Context, events.LiveTicket, events.SupersededFunc) (events.Taken, error)

// queueThenTake creates a ticket that replaces a player's waiting one:
// stored and queued first, then taken (superseding the waiting one), so
// that a creation that fails before it is queued leaves the waiting
// ticket as it was.
func (s *Service) queueThenTake(ctx context.Context, rec Record, rulesVersion string) (View, error) {
	id := rec.Ticket.TicketID
	unknown, err := s.storeAndQueue(ctx, rec, rulesVersion, false, false)
	if err != nil {
		s.tracker.Untrack(context.WithoutCancel(ctx), id)
		return View{}, err
	}
	if unknown {
		s.withdrawals.elsewhere.Inc()
		return ViewOf(rec, nil), nil // found its player's live ticket (takenElsewhere), its withdrawal's fate unknown
	}
	if err := s.take(ctx, rec); err != nil {
		if s.takenElsewhere(ctx, rec) {
			// Its player's live ticket already (its shard's owner took
			// it in): a withdrawal would only undo that.
			s.withdrawals.elsewhere.Inc()
			return ViewOf(rec, nil), nil
		}
		// Stored and queued, and its shard's owner would take it in all
		// the same; but without a key its client never asks for it again,
		// so it is withdrawn: an error means no live ticket (storeAndQueue).
		// One a matcher put in a match first is answered, still tracked
		// (its shard's owner took it in, superseding the waiting one). One
		// whose fate is unknown is not, unless it was found its player's
		// live ticket (takenElsewhere): else the waiting one may still be
		// matched, and a 202 says it is superseded; it is withdrawn in the
		// background.
		switch v, fate := s.withdraw(ctx, rec, err); {
		case fate == fateInMatch:
			return v, nil
		case fate == fateUnknown && s.takenElsewhere(ctx, rec):
			s.answeredUnknown(rec)
			s.withdrawals.elsewhere.Inc()
			return ViewOf(rec, nil), nil
		case fate == fateUnknown:
			s.withdrawLater(rec)
		}
		s.tracker.Untrack(context.WithoutCancel(ctx), id)
		return View{}, err
	}
	return ViewOf(rec, nil), nil
}

// take makes a queued ticket its players' live ticket before the client
// hears 202, superseding (and telling) any older ticket of theirs still
// waiting, whatever region or path it came by (events.Players). So from
// the 202 on, an older ticket of the player can never be matched; the
// matcher's own take of this ticket finds it live and changes nothing.
// Over NATS there is no such moment: a ticket published there supersedes
// when its shard's owner takes it in.
//
// A take refused for now (refusedNow: the players or claims bucket
// without a leader) is tried again for up to takeTries, as a withdrawal
// is (withdraw): the ticket is queued already, and a take that gives up
// at the first refusal leaves it to a withdrawal through the same
// outage, which a matcher may beat (chaos S62: two replacements matched
// while their clients were told 503). Take is idempotent, and the
// tickets it superseded on a try that failed later stay superseded and
// told (Claims.Tell tells once).
func (s *Service) take(ctx context.Context, rec Record) error {
	_, err := s.players.Take(ctx, rec.live(), s.tellSuperseded)
	if refusedNow(err) {
		tctx, cancel := context.WithTimeout(ctx, takeTries)
		defer cancel()
		s.withdrawals.whileRefused(tctx, func() bool { return refusedNow(err) }, func() {
			_, err = s.players.Take(tctx, rec.live(), s.tellSuperseded)
		})
	}
	if err != nil {
		return fmt.Errorf("take ticket %s: %w", rec.Ticket.TicketID, err)
	}
	return nil
}

// takeTries is how long a take refused for now is tried again (take): a
// leader that steps down is replaced within a second or two (withdrawTries
// says how the matchers met it), and the creation keeps a withdrawal's
// bound after it.
const takeTries = events.ClaimCallTimeout

// republish makes sure a repeated request's ticket is queued: unless it has
// an outcome, it is tracked and published again (stored once within the
// duplicate window). owner is its claim's owner, read first ("": none, and
// it was queued). Its error is what the repeat should answer.
func (s *Service) republish(ctx context.Context, rec Record) (owner string, err error) {
	owner, err = s.claims.Owner(ctx, rec.Ticket.TicketID)
	if err != nil || owner != "" {
		return owner, err
	}
	if err := s.drainedUntaken(ctx, rec); err != nil {
		return "", err
	}
	if err := s.tracker.Track(ctx, &rec.Ticket, nil); err != nil {
		return "", err
	}
	if _, err := s.pub.TicketUnder(ctx, rec.Shard.Region, rec.Shard.Tier, rec.Ticket, s.stampOf(rec.Ticket)); err != nil {
		return "", fmt.Errorf("queue ticket %s: %w", rec.Ticket.TicketID, err)
	}
	return "", s.take(ctx, rec)
}

// drainedUntaken refuses, as a new ticket, a repeat whose first attempt
// stored the record but did not make the ticket the live ticket of every
// one of its players (503 unavailable, which invites the repeat), when
// its shard is drained: that attempt stopped before the ticket could be
// queued, or queued it first (a player had a waiting ticket) and failed
// there. A ticket the first attempt made live was admitted before the
// drain, whether or not its queue then failed (createKeyed takes before
// it queues), and its repeat is answered, and the ticket queued, as
// before the drain: a drain stops new tickets, and the frontends see it
// a moment late anyway. In the queue-first order, a first attempt whose
// publish timed out, or whose take failed after the publish (part of a
// party's entries written), may have queued the ticket all the same; its
// repeat is refused, and the queued ticket is a waiting one nobody
// follows until it expires, as a new ticket refused late would be.
func (s *Service) drainedUntaken(ctx context.Context, rec Record) error {
	if s.cfg.Drains == nil {
		return nil
	}
	drained := s.cfg.Drains.CheckShard(rec.Shard)
	if drained == nil {
		return nil
	}
	// Every player: TakeFirst writes a party's entries one by one and
	// may stop at the second (a waiting ticket), then queues first.
	for _, player := range rec.Ticket.Players() {
		live, err := s.players.Live(ctx, player)
		if err != nil {
			return fmt.Errorf("live ticket of %s: %w", rec.Ticket.TicketID, err)
		}
		if live != rec.Ticket.TicketID {
			return drained
		}
	}
	return nil
}

// stampOf is the rule set version a stored ticket is published again
// under: the set in force, checked again as Create checks, since the one
// it was created under may be gone; none if that set refuses it, so a
// matcher judges it at once rather than wait for a set that never comes.
func (s *Service) stampOf(t events.Ticket) string {
	set := s.cfg.Rules.Get()
	if set.Check(&t, s.cfg.Regions) != nil {
		return ""
	}
	return set.Version()
}

// build turns a request into a ticket. It refuses, every problem at once
// and each under its field, what the contract refuses (Ticket.Validate)
// and what set, the rule set in force, refuses (rules.Set.Check): the
// very check the matchers make when they take a ticket in, so that nothing
// taken here is dead-lettered there for breaking a rule (a matcher still
// on an older set waits for this one: the ticket is stamped with its
// version). Only the region (the subject the ticket goes to) is the
// frontend's to check.
func (s *Service) build(set *rules.Set, req Request) (events.Ticket, events.Shard, error) {
	t := events.Ticket{
		SchemaVersion: events.SchemaVersion,
		TicketID:      req.TicketID,
		PlayerID:      req.PlayerID,
		Party:         req.Party,
		Mode:          req.Mode,
		LatenciesMS:   req.LatenciesMS,
		Attributes:    req.Attributes,
		CreatedAt:     s.now().UTC(),
	}
	if t.Mode == "" {
		t.Mode = events.DefaultMode
	}
	fe := &fieldList{}
	if req.Skill == nil {
		fe.add(events.FieldError{Field: "skill", Reason: "required"})
	} else {
		t.Skill = *req.Skill
	}
	fe.addAll(t.Validate())
	fe.addAll(set.Check(&t, s.cfg.Regions))
	switch {
	case req.Region == "":
		fe.add(events.FieldError{Field: "region", Reason: "required"})
	case !slices.Contains(s.cfg.Regions, req.Region):
		fe.add(events.FieldError{Field: "region", Reason: fmt.Sprintf("unknown region %q, want one of %s", req.Region, s.cfg.Regions)})
	}
	// The tier follows from the skill, so the subject always fits the ticket.
	tier, _ := s.cfg.Tiers.For(t.Skill)
	if len(fe.fields) > 0 {
		return events.Ticket{}, events.Shard{}, &events.ValidationError{Kind: "ticket", Fields: fe.fields}
	}
	return t, events.Shard{Region: req.Region, Tier: tier}, nil
}

// fieldList gathers the field errors of build's checks, naming each field
// once: the contract and the rule set may both refuse one (a party of 17
// is too many for any ticket and for any team), and the client is told
// the first reason.
type fieldList struct{ fields []events.FieldError }

func (l *fieldList) add(f events.FieldError) {
	if !slices.ContainsFunc(l.fields, func(g events.FieldError) bool { return g.Field == f.Field }) {
		l.fields = append(l.fields, f)
	}
}

// addAll adds the fields of a validation error; any other error is not
// one of the checks' (they return nothing else) and is kept as the
// ticket's.
func (l *fieldList) addAll(err error) {
	var ve *events.ValidationError
	switch {
	case err == nil:
	case errors.As(err, &ve):
		for _, f := range ve.Fields {
			l.add(f)
		}
	default:
		l.add(events.FieldError{Field: "ticket", Reason: err.Error()})
	}
}

func requestHash(req Request) string {
	b, _ := json.Marshal(req) // a Request always encodes
	return hashHex(string(b))
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:12])
}

func newTicketID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "r" + hex.EncodeToString(b[:])
}
