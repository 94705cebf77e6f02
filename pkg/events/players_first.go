package events

import (
	"context"
	"errors"
)

// ErrWouldSupersede: TakeFirst met a player's undecided ticket, which
// making the ticket live would end.
var ErrWouldSupersede = errors.New("a player's undecided ticket would be superseded")

// TakeFirst is Take for a ticket not queued yet, made live before it is
// so that its shard's owner, taking it in, finds it live already instead
// of racing this take with its own (the frontend's creations). It ends
// no undecided ticket: superseding one ends it for good, and a ticket
// not queued yet may still fail to be, which would leave a player who
// had a ticket waiting with none. On meeting one it stops with
// ErrWouldSupersede; its caller then queues the ticket first and Takes
// it after, as every other path does. What it wrote before it stopped
// (the id bound, another player of a party made live) is what that Take
// writes too.
func (p *Players) TakeFirst(ctx context.Context, t LiveTicket, tell SupersededFunc) (Taken, error) {
	return p.take(ctx, t, tell, true)
}
