package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// errAlreadyDecided: the ticket has an outcome; a cancel changes nothing.
var errAlreadyDecided = errors.New("ticket already has an outcome")

// cancelled is what cancel did, for -json.
type cancelled struct {
	TicketID string        `json:"ticket_id"`
	Status   events.Status `json:"status"`
	Claim    string        `json:"claim"`
	Reason   string        `json:"reason,omitempty"`
	// Cancelled is true when this call decided the ticket.
	Cancelled bool `json:"cancelled"`
	// NoticeError says the cancel notice to the ticket's shard was not
	// sent: a hint only, the claim keeps the ticket out of every match.
	NoticeError string `json:"notice_error,omitempty"`
}

// cancelCmd cancels a ticket the way the frontend's cancel does
// (services/frontend/internal/tickets/end.go): it claims the ticket for
// events.OwnerCancelled, the one outcome, so a match that claims it later
// loses and a match that claimed it first keeps it; it tells the
// players through events.Claims.Tell (once, marked); then it sends the
// cancel notice to the ticket's shard, so its owner drops it from the
// pool at once. A ticket some other owner decided is not changed: its
// players are told that outcome if nobody told them yet, as the frontend
// does, and the command fails with errAlreadyDecided. A ticket cancelled
// before answers "cancelled before", and its players are told now if
// nobody told them (an earlier cancel that failed to publish).
func cancelCmd(fs *flag.FlagSet) runFunc {
	reason := fs.String("reason", "cancelled by an operator", "the reason its players are told")
	var regions events.Regions
	fs.Var(&regions, "regions", "regions a superseded ticket found untold gets a cancel notice in, as the services send, comma-separated (default: the deployment's, read from NATS)")
	return func(ctx context.Context, s *session, args []string) error {
		if len(regions) == 0 {
			var err error
			if regions, err = s.servedRegions(ctx); err != nil {
				return err
			}
		}
		info, err := s.lookupTicket(ctx, args[0])
		if err != nil {
			return err
		}
		if len(info.Players) == 0 {
			return fmt.Errorf("ticket %s: its players are not known (claim %q): nothing to cancel or tell", info.TicketID, info.Claim)
		}
		out, err := s.cancel(ctx, info, *reason, regions)
		if err != nil && !errors.Is(err, errAlreadyDecided) {
			return err
		}
		if s.json {
			if perr := printJSON(s.out, out); perr != nil {
				return perr
			}
		} else {
			lines := [][2]string{{"status", string(out.Status)}, {"claim", out.Claim}, {"reason", out.Reason}}
			if out.Cancelled {
				lines = append(lines, [2]string{"cancel notice", cmp.Or(out.NoticeError, "sent")})
			}
			section(s.out, "ticket "+out.TicketID, lines...)
		}
		return err
	}
}

// cancel claims info's ticket cancelled and tells its players.
func (s *session) cancel(ctx context.Context, info *ticketInfo, reason string, regions events.Regions) (cancelled, error) {
	claims, err := s.claimsBucket(ctx)
	if err != nil {
		return cancelled{}, err
	}
	pub := events.NewPublisher(s.js, s.subj)
	lt := info.liveTicket()
	before, err := claims.Owner(ctx, info.TicketID) // right before claiming, not lookupTicket's read
	if err != nil {
		return cancelled{}, err
	}
	won, owner, err := claims.Claim(ctx, info.TicketID, events.OwnerCancelled)
	if err != nil {
		return cancelled{}, err
	}
	out := cancelled{TicketID: info.TicketID, Claim: owner, Status: events.OwnerStatus(owner)}
	if !won {
		if err := claims.Tell(ctx, events.Telling{Ticket: lt, Owner: owner}, pub.TellSuperseded(regions, nil)); err != nil {
			return out, err
		}
		return out, fmt.Errorf("%w: %s (claim %s)", errAlreadyDecided, out.Status, owner)
	}
	// Cancelled before this call, by the claim itself: claiming is
	// idempotent, so Claim's win does not say who created it. Told before
	// is read from the told mark, now, not from lookupTicket's earlier
	// read: a player's cancel in between is theirs, told their reason.
	toldBefore, err := claims.Told(ctx, info.TicketID, owner)
	if err != nil {
		return out, err
	}
	out.Cancelled, out.Reason = before != events.OwnerCancelled && !toldBefore, reason
	if !out.Cancelled {
		out.Reason = "cancelled before"
	}
	if toldBefore {
		return out, nil // answered as the first cancel was, its players told
	}
	// Told now, whoever cancelled it: the first cancel may have failed
	// to tell (Claims.Tell marks it; a repeat tells nobody twice).
	if err := claims.Tell(ctx, events.Telling{Ticket: lt, Owner: owner, Reason: reason}, pub.TellSuperseded(regions, nil)); err != nil {
		return out, fmt.Errorf("ticket %s is cancelled but its players were not told (a matcher or frontend that meets the claim tells them): %w", info.TicketID, err)
	}
	if !out.Cancelled {
		out.Reason = "cancelled before; its players were not told, and are now: " + reason
	}
	if lt.Region == "" {
		out.NoticeError = "the ticket's shard is not known; its owner drops it when it meets the claim"
		return out, nil
	}
	// A hint for the shard's owner to drop it now; the claim already
	// rules it out.
	if err := pub.CancelNotice(ctx, lt.Region, lt.Tier, info.TicketID, lt.Mode); err != nil {
		out.NoticeError = err.Error()
	}
	return out, nil
}

// liveTicket is the ticket as events.Claims.Tell takes it: its players,
// and its shard and mode when known.
func (info *ticketInfo) liveTicket() events.LiveTicket {
	lt := events.LiveTicket{TicketID: info.TicketID, Players: info.Players, Mode: info.Mode}
	if info.live != nil {
		lt = *info.live
	}
	if region, tier, ok := strings.Cut(info.Shard, "."); ok {
		lt.Region, lt.Tier = region, tier
	}
	if info.Record != nil {
		lt.CreatedAt = info.Record.Ticket.CreatedAt
	}
	return lt
}
