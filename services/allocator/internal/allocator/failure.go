package allocator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// ErrPermanent is matched (errors.Is) by a failure that no retry can fix
// (a match that does not decode or that no room can seat, a match that
// failed before, a mode no game server hosts): the match is given up at
// once instead of retried until RetryDeadline.
var ErrPermanent = errors.New("permanent failure")

// permanentError marks its error permanent and keeps it otherwise as it
// is: the same text, and errors.Is still finds what it wraps.
type permanentError struct{ err error }

// Permanent marks err as a permanent failure (see ErrPermanent), keeping
// its text: a Backend returns one for a match it can never allocate.
func Permanent(err error) error { return &permanentError{err: err} }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// isPermanent says whether the Retry middleware must give err up.
func isPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// failure ends the matches that could not be allocated.
type failure struct {
	records *records
	pub     *events.Publisher
	claims  releaser
	// requeue puts the tickets of a match with no server back in the
	// queue (Config.Requeue) instead of failing it.
	requeue bool
	met     *metrics
	log     *slog.Logger
	now     func() time.Time
}

// releaser gives back a match's claims (events.Claims.Release).
type releaser interface {
	Release(ctx context.Context, ids []string, owner string) error
}

// giveUp ends a match that could not be allocated: players are told why,
// the match is dead-lettered, and the message is acked. If even that cannot
// be stored, the error is returned and the message is nakked for later.
func (f *failure) giveUp(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		// Stopping, or another request is allocating this match: not a
		// failure. The message is nakked and comes back.
		if errors.Is(err, context.Canceled) || errors.Is(err, errInProgress) || msg.Context().Err() != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), 5*time.Second)
		defer cancel()
		// A match that does not decode has no record to mark and no player
		// to tell: it is only dead-lettered.
		m, derr := events.DecodeMatch(msg.Payload)
		decoded := derr == nil
		if decoded && f.requeue && errors.Is(err, ErrNoCapacity) {
			if rerr := f.requeueMatch(ctx, m, errNoServerFree); rerr != nil {
				return nil, fmt.Errorf("requeue after %w: %w", err, rerr)
			}
			f.met.outcomes.WithLabelValues("requeued").Inc()
			f.log.Warn("no game server; match's tickets requeued with their wait", "match_id", m.MatchID, "tickets", len(m.Tickets))
			return nil, nil
		}
		if decoded && m.Backfill != nil {
			// Its players' tickets were fine; the room they were to
			// join could not take them: they wait again.
			if rerr := f.requeueBackfill(ctx, m, err); rerr != nil {
				return nil, fmt.Errorf("requeue after %w: %w", err, rerr)
			}
			f.met.outcomes.WithLabelValues("backfill_requeued").Inc()
			f.log.Warn("backfill match failed; its tickets requeued with their wait", "match_id", m.MatchID, "err", err)
			return nil, nil
		}
		// Only a match nobody allocated may fail, and only once.
		if decoded {
			if ferr := f.records.markFailed(ctx, m.MatchID); ferr != nil {
				return nil, fmt.Errorf("%w (not failed: %w)", err, ferr)
			}
		}
		subject := msg.Metadata.Get(metaSubject)
		if dlErr := f.deadLetter(ctx, subject, msg.Payload, err); dlErr != nil {
			return nil, dlErr
		}
		if decoded {
			if terr := f.tellFailed(ctx, m, err); terr != nil {
				return nil, terr
			}
		}
		f.log.Error("match failed; players told and match dead-lettered", "err", err, "subject", subject)
		return nil, nil
	}
}

// deadLetter counts and records the failed match.
func (f *failure) deadLetter(ctx context.Context, subject string, payload []byte, err error) error {
	f.met.outcomes.WithLabelValues("failed_" + failReason(err)).Inc()
	dl := events.NewDeadLetter(Source, subject, 0, payload, err, f.now())
	if perr := f.pub.DeadLetter(ctx, dl); perr != nil {
		return fmt.Errorf("dead-letter after %w: %w", err, perr)
	}
	return nil
}

// tellFailed gives every player of m a "failed" result with the reason.
func (f *failure) tellFailed(ctx context.Context, m events.Match, err error) error {
	var rs []events.Result
	for _, t := range m.Tickets {
		for _, p := range t.Players {
			rs = append(rs, events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusFailed, MatchID: m.MatchID, Reason: err.Error()})
		}
	}
	if perr := f.pub.Results(ctx, rs); perr != nil {
		return fmt.Errorf("tell players after %w: %w", err, perr)
	}
	return nil
}

// errNoServerFree is why a match's tickets are queued again when no game
// server could be found.
var errNoServerFree = errors.New("no game server was free")

// requeueBackfill queues the tickets of a match that was to fill a
// running room again, once its record says it failed, so that no later
// delivery of it assigns them to the room (a match with a server
// recorded is refused: it is assigned, and its next delivery says so).
func (f *failure) requeueBackfill(ctx context.Context, m events.Match, why error) error {
	if err := f.records.markFailed(ctx, m.MatchID); err != nil {
		return err
	}
	return f.requeueMatch(ctx, m, why)
}

// requeueMatch gives the match's tickets back to the queue: their claims
// for this match are released, their players hear they are queued again
// and why, and each ticket is published anew (events.Publisher.Requeue)
// so that it keeps its wait.
//
// A claim not given back is an error before anything is told or
// published: a ticket published again while its claim stays the match's
// would be taken, by a matcher that heard the match's matched notice, for
// a copy of a matched ticket and dropped, its player told "queued". The
// error nakks the match (giveUp), and its next delivery, finding no
// server again, requeues it again (or, one free by then, assigns it: its
// players heard nothing of the requeue): the claims given back the first
// time are gone, which is no failure, and the results and tickets told
// and published before a later step failed carry message ids, so a
// repeat is stored once.
func (f *failure) requeueMatch(ctx context.Context, m events.Match, why error) error {
	ids := make([]string, len(m.Tickets))
	for i, t := range m.Tickets {
		ids[i] = t.TicketID
	}
	if err := f.claims.Release(ctx, ids, events.MatchOwner(m.MatchID)); err != nil {
		return fmt.Errorf("give back the claims of match %s: %w", m.MatchID, err)
	}
	// Every player hears "queued" (in one round trip) before any ticket is
	// published again.
	var rs []events.Result
	for _, mt := range m.Tickets {
		for _, p := range mt.Players {
			rs = append(rs, events.Result{TicketID: mt.TicketID, PlayerID: p, Status: events.StatusQueued, Reason: why.Error() + "; queued again with the same wait"})
		}
	}
	if err := f.pub.Results(ctx, rs); err != nil {
		return err
	}
	for _, mt := range m.Tickets {
		if err := f.pub.Requeue(ctx, m, mt); err != nil {
			return err
		}
	}
	return nil
}

// failReason is the metric label of a failure. It names the cause, not
// the retry policy (ErrPermanent): "invalid" is events.ErrInvalid, which
// a match that does not decode and a match that failed before both wrap.
func failReason(err error) string {
	switch {
	case errors.Is(err, ErrNoCapacity):
		return "no_capacity"
	case errors.Is(err, ErrModeNotHosted):
		return "mode_not_hosted"
	case errors.Is(err, events.ErrInvalid):
		return "invalid"
	default:
		return "error"
	}
}
