package allocator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
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

// releaser gives back a match's claims (events.Claims.Release) and
// says who holds a claim (events.Claims.Owner).
type releaser interface {
	Release(ctx context.Context, ids []string, owner string) error
	Owner(ctx context.Context, ticketID string) (string, error)
}

// giveUp ends a match that could not be allocated: players are told why,
// the match is dead-lettered, and the message is acked. If even that cannot
// be stored, the error is returned and the message is nakked for later.
//
// A match that is not settled (this allocator stopping, another request
// allocating it) or that NATS did not answer for (unavailable: a timeout,
// a connection cut) is not given up but nakked: it may still be
// allocated, by this allocator or another, on a later delivery.
//
// Each delivery is decided here once, and nakked or acked: none is held
// in the allocator past it. The consumer delivers a match without bound
// (MaxDeliver -1), so a nakked match always comes back, however many
// deliveries failed before. (The puller keeps a delivery its allocator's
// while it is handled, up to a reservation's life; held past that, the
// server would deliver the match again meanwhile: two deliveries
// allocating at once.)
func (f *failure) giveUp(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, errInProgress) || errors.Is(err, errReplicaBehind) || msg.Context().Err() != nil || unavailable(err) {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), giveUpTimeout)
		defer cancel()
		return nil, f.end(ctx, msg, err)
	}
}

// giveUpTimeout bounds the storing of a give-up (record, dead letter,
// results or requeue), a few JetStream round trips: it runs after the
// delivery's own retries, so it has a deadline of its own, and one that
// does not end in time is nakked and tried again on the next delivery.
const giveUpTimeout = 5 * time.Second

// unavailable says whether err is NATS not answering
// (natsconn.Unanswered) rather than an answer: the match may still be
// allocated once NATS answers, so it is retried, never failed for it. An
// error of the Backend (backendError) is not NATS's, whatever it wraps.
func unavailable(err error) bool {
	return !errors.As(err, new(*backendError)) && natsconn.Unanswered(err)
}

// end gives up the match of msg, which failed with err: its tickets are
// queued again (a match with no server, with Config.Requeue; one whose
// record says a requeue began; one that was to fill a running room), or
// it fails: its record is marked failed, the match dead-lettered and its
// players told. An error says that this could not be stored: the
// message is nakked.
func (f *failure) end(ctx context.Context, msg *message.Message, err error) error {
	// A match that does not decode has no record to mark and no player
	// to tell: it is only dead-lettered.
	m, derr := events.DecodeMatch(msg.Payload)
	decoded := derr == nil
	if decoded && m.Backfill == nil && (errors.Is(err, errRequeued) || f.requeue && errors.Is(err, ErrNoCapacity)) {
		again, rerr := f.requeueNoServer(ctx, m)
		switch {
		case errors.As(rerr, new(*failedBefore)):
			// Failed before (its players told, or to be told, why): it
			// cannot be queued again, so it is told again below.
			err = fmt.Errorf("%w (after %w)", rerr, err)
		case rerr != nil:
			return fmt.Errorf("requeue after %w: %w", err, rerr)
		default:
			if !again {
				f.met.outcomes.WithLabelValues("requeued").Inc()
				f.log.Warn("no game server; match's tickets requeued with their wait", "match_id", m.MatchID, "tickets", len(m.Tickets), "err", err)
			}
			return nil
		}
	}
	if decoded && m.Backfill != nil {
		// Its players' tickets were fine; the room they were to
		// join could not take them: they wait again.
		if rerr := f.requeueBackfill(ctx, m, err); rerr != nil {
			return fmt.Errorf("requeue after %w: %w", err, rerr)
		}
		f.log.Warn("backfill match failed; its tickets requeued with their wait", "match_id", m.MatchID, "err", err)
		return nil
	}
	return f.fail(ctx, msg, m, decoded, err)
}

// fail fails the match of msg (m, if it decoded), which failed with err:
// its record is marked failed, by compare-and-set, with what its players
// are told (toldReason), and they are told that; the match is
// dead-lettered with err itself, for the operator. Only a match nobody
// allocated may fail, and only once: a repeat of one that failed before
// tells its players what they were told then, and is not counted again.
// (A mark stored whose answer was lost is counted by no delivery: the
// next finds it marked.)
func (f *failure) fail(ctx context.Context, msg *message.Message, m events.Match, decoded bool, err error) error {
	told, before := toldReason(err), false
	if decoded {
		var ferr error
		if told, before, ferr = f.records.markFailed(ctx, m.MatchID, told); ferr != nil {
			return fmt.Errorf("%w (not failed: %w)", err, ferr)
		}
	}
	if !before {
		f.met.outcomes.WithLabelValues("failed_" + failReason(err)).Inc()
	}
	subject := msg.Metadata.Get(metaSubject)
	seq, _ := strconv.ParseUint(msg.Metadata.Get(metaStreamSeq), 10, 64)
	if dlErr := f.deadLetter(ctx, subject, seq, msg.Payload, metaOf(msg), err); dlErr != nil {
		return dlErr
	}
	if decoded {
		if terr := f.tellFailed(ctx, m, told); terr != nil {
			return fmt.Errorf("after %w: %w", err, terr)
		}
	}
	f.log.Error("match failed; players told and match dead-lettered", "err", err, "subject", subject)
	return nil
}

// deadLetter records the failed match, the message of stream sequence
// seq (0: unknown) that came with flow meta: a repeat of one is stored
// once.
func (f *failure) deadLetter(ctx context.Context, subject string, seq uint64, payload []byte, meta events.Meta, err error) error {
	dl := events.NewDeadLetter(Source, subject, seq, payload, err, f.now())
	dl.KeepMeta(meta)
	if perr := f.pub.DeadLetter(ctx, dl); perr != nil {
		return fmt.Errorf("dead-letter after %w: %w", err, perr)
	}
	return nil
}

// tellFailed gives every player of m a "failed" result with reason.
func (f *failure) tellFailed(ctx context.Context, m events.Match, reason string) error {
	var rs []events.Result
	for _, t := range m.Tickets {
		for _, p := range t.Players {
			rs = append(rs, events.Result{TicketID: t.TicketID, PlayerID: p, Status: events.StatusFailed, MatchID: m.MatchID, Reason: reason})
		}
	}
	if perr := publishResults(ctx, f.pub, rs); perr != nil {
		return fmt.Errorf("tell players: %w", perr)
	}
	return nil
}

// toldReason is what the players of a match that failed with err are
// told: its kind's own words, never a backend's text (a Kubernetes API's
// answer, cluster names and addresses: the dead letter and the logs
// keep those), and short enough to keep in the match's record. A match
// that no room can seat is told why, in words of our own; one that
// failed before, what it was told then.
func toldReason(err error) string {
	if fb := new(failedBefore); errors.As(err, &fb) {
		return fb.Error()
	}
	for _, kind := range toldKinds {
		if errors.Is(err, kind) {
			return kind.Error()
		}
	}
	if errors.Is(err, events.ErrInvalid) {
		return events.CutText(err.Error(), maxToldReason)
	}
	return errNotAllocated.Error()
}

// toldKinds are the failures players are told in their own words.
// The first found is told: errOverShape comes wrapped in errRoomGone.
var toldKinds = []error{ErrNoCapacity, ErrModeNotHosted, errNoServerFree, errOverShape, errSeatsPromised, errRoomGone}

// maxToldReason bounds the reason a failed match's players are told.
const maxToldReason = 200

// errNotAllocated is what players are told of a match that failed for
// any reason toldReason has no words of its own for.
var errNotAllocated = errors.New("no game server could be allocated")

// errNoServerFree is why a match's tickets are queued again when no game
// server could be found.
var errNoServerFree = errors.New("no game server was free")

// requeueNoServer queues the tickets of a match with no server again,
// once its record says so (markRequeueing, before any claim is given
// back): from then on no delivery of it allocates it, and each finishes
// the requeue instead (errRequeued), however far an earlier one got. The
// record then says it is done (markRequeued), and a later delivery
// stores nothing more. again says it was done before.
func (f *failure) requeueNoServer(ctx context.Context, m events.Match) (again bool, err error) {
	done, err := f.records.markRequeueing(ctx, m.MatchID)
	if err != nil || done {
		return done, err
	}
	if err := f.requeueMatch(ctx, m, errNoServerFree.Error()); err != nil {
		return false, err
	}
	return false, f.records.markRequeued(ctx, m.MatchID)
}

// requeueBackfill queues the tickets of a match that was to fill a
// running room again, once its record says it failed, so that no later
// delivery of it assigns them to the room (a match with a server
// recorded is refused: it is assigned, and its next delivery says so).
// It is counted once, by the delivery that marks the record.
func (f *failure) requeueBackfill(ctx context.Context, m events.Match, why error) error {
	told, again, err := f.records.markFailed(ctx, m.MatchID, toldReason(why))
	if err != nil {
		return err
	}
	if !again {
		f.met.outcomes.WithLabelValues("backfill_requeued").Inc()
	}
	return f.requeueMatch(ctx, m, told)
}

// requeueMatch gives the match's tickets back to the queue: their claims
// for this match are released, their players hear they are queued again
// and why (in toldReason's words), and each ticket is published anew
// (events.Publisher.Requeue) so that it keeps its wait.
//
// A claim not given back is an error before anything is told or
// published: a ticket published again while its claim stays the match's
// would be taken, by a matcher that heard the match's matched notice, for
// a copy of a matched ticket and dropped, its player told "queued". The
// error nakks the match (giveUp), and its next delivery requeues it
// again, never assigns it (its record says so first: requeueNoServer,
// requeueBackfill), for a ticket whose claim was given back may be in
// another match by then: the claims given back the first time are gone,
// which is no failure, and the results and tickets told and published
// before a later step failed carry message ids, so a repeat is stored
// once. A ticket whose claim another owner holds once every claim is
// given back (taken: another match, or an outcome) is that owner's to
// tell: it is neither told "queued" nor published again.
func (f *failure) requeueMatch(ctx context.Context, m events.Match, why string) error {
	owner := events.MatchOwner(m.MatchID)
	ids := make([]string, len(m.Tickets))
	for i, t := range m.Tickets {
		ids[i] = t.TicketID
	}
	if err := f.claims.Release(ctx, ids, owner); err != nil {
		return fmt.Errorf("give back the claims of match %s: %w", m.MatchID, err)
	}
	taken, err := f.taken(ctx, ids, owner)
	if err != nil {
		return fmt.Errorf("requeue match %s: %w", m.MatchID, err)
	}
	tickets := slices.DeleteFunc(slices.Clone(m.Tickets), func(t events.MatchTicket) bool { return taken[t.TicketID] })
	// Every player hears "queued" (in one round trip) before any ticket is
	// published again.
	var rs []events.Result
	for _, mt := range tickets {
		for _, p := range mt.Players {
			rs = append(rs, events.Result{TicketID: mt.TicketID, PlayerID: p, Status: events.StatusQueued, Reason: why + "; queued again with the same wait"})
		}
	}
	if err := publishResults(ctx, f.pub, rs); err != nil {
		return err
	}
	for _, mt := range tickets {
		if err := f.pub.Requeue(ctx, m, mt); err != nil {
			return err
		}
	}
	return nil
}

// taken are those of ids whose claims an owner other than owner holds
// now, read side by side. It matters on a requeue resumed on a later
// delivery (the claims given back by an earlier one may be taken since),
// and it is read on every requeue, for a copy of a ticket can be claimed
// in the moment after its claim is given back. That moment stays open
// between this read and the requeue's results: its player may hear
// "queued" just before the other match's result.
func (f *failure) taken(ctx context.Context, ids []string, owner string) (map[string]bool, error) {
	owners := make([]string, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { owners[i], errs[i] = f.claims.Owner(ctx, id) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for i, o := range owners {
		if o != "" && o != owner {
			taken[ids[i]] = true
		}
	}
	return taken, nil
}

// failReason is the metric label of a failure. It names the cause, not
// the retry policy (ErrPermanent): "invalid" is events.ErrInvalid, which
// a match that does not decode and one that no room can seat wrap.
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
