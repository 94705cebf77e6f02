package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// What a replay must not do, and how the CLI sees it coming (replayCheck):
//
//   - Bring back a ticket that was decided otherwise. The matcher also
//     dead-letters a refused ticket its player cancelled meanwhile, or
//     that expired or was superseded (services/matcher intake.reject), so
//     the original's claim must be "failed", the dead-lettering's own; or
//     its id must be bound to other players (a publisher reused another
//     player's ticket id: the claim is that ticket's, and the refused one
//     was told failed without one).
//   - Supersede a player's current ticket. A replay without created_at
//     is dated at this check (replay.go), so it is newer than the ticket
//     they have now and events.Players.Take would cancel that one. A
//     player whose live ticket is undecided is refused; an operator who
//     means it cancels that ticket first. A ticket of theirs created
//     after this check needs no more: Take orders a player's tickets by
//     created_at, and the replay's is its original's or this check's
//     time, so the new ticket wins in whichever order the two reach Take.
//     (One created just before the check but taken after it, or dated by
//     a clock behind the CLI's, is the older and loses.)
//   - Happen twice. The stream's duplicate window (events.DuplicateWindow)
//     remembers the replay's message id for two minutes only; past it, a
//     replay is known by its traces: a claim of its ticket id, its
//     binding to players ("ticket.<id>"), a result of it. Those live
//     events.RecordTTL after they are written, so a dead letter older
//     than that (less replayClockSkew) is refused: its own claim, and any
//     earlier replay's traces, may be gone, and the check would pass
//     silently.

// replayClockSkew is how far the matcher's clock (the dead letter's At)
// may be from the CLI's: the age limit keeps that much short of
// events.RecordTTL.
const replayClockSkew = time.Minute

// replayMaxAge is the oldest dead letter a replay is checked for (above).
const replayMaxAge = events.RecordTTL - replayClockSkew

// replayFacts are what the deployment keeps about a dead letter's ticket,
// its replay and its players (gatherReplay).
type replayFacts struct {
	// claim and bound are the original ticket id's claim owner and the
	// players it is bound to.
	claim string
	bound []string
	// replayClaim, replayBound and replayResult are the replay id's
	// traces; replayResult names a player with a result of it.
	replayClaim  string
	replayBound  []string
	replayResult string
	// live are the players' live tickets that are undecided.
	live map[string]events.LiveTicket
}

// replayCheck says why d must not be replayed now (nil: it may be), or
// fails when the state cannot be read.
func (s *session) replayCheck(ctx context.Context, d *deadLetter, now time.Time) (whyNot, err error) {
	if _, err := s.replayable(d); err != nil {
		return err, nil
	}
	if age := now.Sub(d.Record.At); age > replayMaxAge {
		return fmt.Errorf("dead-lettered %s ago, past what a replay can be checked for (%s): its claim and an earlier replay's traces live %s (events.RecordTTL), so neither how its ticket ended nor whether it was replayed already can be read",
			age.Round(time.Second), replayMaxAge, events.RecordTTL), nil
	}
	if d.TicketID == "" || events.CheckID(d.TicketID) != nil {
		return errors.New("its ticket has no valid ticket_id: the claim that says how it ended cannot be read (the matcher's derived id is not kept)"), nil
	}
	if len(d.Players) == 0 {
		return errors.New("its payload names no players"), nil
	}
	f, err := s.gatherReplay(ctx, d)
	if err != nil {
		return nil, err
	}
	return f.whyNot(d), nil
}

// whyNot judges the facts (see the top of this file).
func (f *replayFacts) whyNot(d *deadLetter) error {
	id := replayTicketID(d)
	switch {
	case f.replayClaim != "":
		return fmt.Errorf("%w as ticket %s: its claim is %s", errReplayedAlready, id, f.replayClaim)
	case f.replayBound != nil:
		return fmt.Errorf("%w as ticket %s: its id is bound to %s", errReplayedAlready, id, strings.Join(f.replayBound, ", "))
	case f.replayResult != "":
		return fmt.Errorf("%w as ticket %s: %s has a result of it", errReplayedAlready, id, f.replayResult)
	}
	idTaken := f.bound != nil && !samePlayers(f.bound, d.Players)
	switch {
	case idTaken || f.claim == events.OwnerFailed:
	case f.claim == "":
		return fmt.Errorf("its ticket %s has no claim: how it ended is not known (the matcher claims it failed right after dead-lettering it; try again in a moment)", d.TicketID)
	default:
		return fmt.Errorf("its ticket %s ended %s (claim %s), not failed by its dead-lettering: a replay would bring back a ticket that was decided", d.TicketID, events.OwnerStatus(f.claim), f.claim)
	}
	for _, p := range d.Players {
		if lt, ok := f.live[p]; ok {
			return fmt.Errorf("player %s has a live ticket, %s (%s.%s %s): the replay would supersede it; cancel it first (quickmatch cancel %s) if the replay is what they want",
				p, lt.TicketID, lt.Region, lt.Tier, lt.Mode, lt.TicketID)
		}
	}
	return nil
}

// gatherReplay reads the facts replayCheck judges.
func (s *session) gatherReplay(ctx context.Context, d *deadLetter) (*replayFacts, error) {
	id := replayTicketID(d)
	f := &replayFacts{live: map[string]events.LiveTicket{}}
	var err error
	if f.replayClaim, err = s.owner(ctx, id); err != nil {
		return nil, err
	}
	if f.replayBound, err = s.boundPlayers(ctx, id); err != nil {
		return nil, err
	}
	if f.claim, err = s.owner(ctx, d.TicketID); err != nil {
		return nil, err
	}
	if f.bound, err = s.boundPlayers(ctx, d.TicketID); err != nil {
		return nil, err
	}
	for _, p := range d.Players {
		rs, err := s.results(ctx, p)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(rs, func(r events.Result) bool { return r.TicketID == id }) {
			f.replayResult = p
		}
		lt, err := s.live(ctx, p)
		if err != nil || lt == nil || lt.TicketID == d.TicketID {
			if err != nil {
				return nil, err
			}
			continue
		}
		// The entry stays after its ticket is decided; only an
		// undecided one would be superseded.
		owner, err := s.owner(ctx, lt.TicketID)
		if err != nil {
			return nil, err
		}
		if owner == "" {
			f.live[p] = *lt
		}
	}
	return f, nil
}

// samePlayers reports whether a and b name the same players, in any order.
func samePlayers(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
