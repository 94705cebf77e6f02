package chaos

// A no-show is a ticket assigned that no client acknowledged (Check). It
// is traced here to the POST that created it: its player's POST that
// failed while the ticket was created (its created_at, from its match:
// the match's record, or the claim of the ticket, which carries the
// match when no record is written). A POST that answered nothing (post_error: its connection
// failed, its frontend killed) is a creation cut short, which a client
// without an Idempotency-Key cannot mend; one that answered an error
// (post_503) is a frontend telling its client no ticket was made while
// one was, which the frontend's withdrawal exists to prevent.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/loadrecord"
)

// FailedPost is a POST that created no ticket its client knows of (the
// load tool's -record).
type FailedPost = loadrecord.FailedPost

// NoShowPost is a no-show and the failed POST of its player that was
// under way when it was created (Frontend "": none found; Failed
// "no_record": its match could be read neither from its record nor from
// the ticket's claim).
type NoShowPost struct {
	Ticket    string    `json:"ticket"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	Frontend  string    `json:"frontend,omitempty"`
	SentAt    time.Time `json:"sent_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Failed    string    `json:"failed,omitempty"`
}

// traceNoShows traces each no-show (the checker's: assigned, never
// acknowledged; noShows holds each one's assignment) to its player's
// failed POST, reading its creation time from its match (matchOf); names
// maps a frontend's base URL to its name.
func traceNoShows(ctx context.Context, js jetstream.JetStream, noShows []events.Result, failed []FailedPost, names map[string]string) []NoShowPost {
	records, claims := matchStores(ctx, js)
	var out []NoShowPost
	for _, r := range noShows {
		ns := NoShowPost{Ticket: r.TicketID, Failed: "no_record"}
		if created, ok := createdAt(ctx, records, claims, r); ok {
			ns = traceNoShow(r.TicketID, r.PlayerID, created, failed)
			ns.Frontend = names[ns.Frontend]
		}
		out = append(out, ns)
	}
	return out
}

// createdAt is ticket r.TicketID's created_at, from the match r assigns
// it to.
func createdAt(ctx context.Context, records jetstream.KeyValue, claims *events.Claims, r events.Result) (time.Time, bool) {
	m, ok := matchOf(ctx, records, claims, r.MatchID, r.TicketID)
	if !ok {
		return time.Time{}, false
	}
	for _, t := range m.Tickets {
		if t.TicketID == r.TicketID {
			return t.CreatedAt, true
		}
	}
	return time.Time{}, false
}

// matchStores binds where a match is kept: the matches bucket (its
// record) and the claims bucket (its tickets' claims carry it). Either is
// nil if it cannot be bound; matchOf then reads the other alone.
func matchStores(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, *events.Claims) {
	records, err := js.KeyValue(ctx, events.Subjects{}.MatchesBucket())
	if err != nil {
		records = nil
	}
	claims, err := events.NewClaims(ctx, js, events.Subjects{})
	if err != nil {
		claims = nil
	}
	return records, claims
}

// matchOf reads match matchID, which ticketID is in: its record if it
// has one, else the match the ticket's claim carries (events.HeaderMatch)
// while the match holds it. A matcher writes a record only for some
// matches (a room that takes backfill; -match-records): the others
// travel in their claims alone.
func matchOf(ctx context.Context, records jetstream.KeyValue, claims *events.Claims, matchID, ticketID string) (events.Match, bool) {
	if matchID == "" {
		return events.Match{}, false
	}
	if records != nil {
		if e, err := records.Get(ctx, matchID); err == nil {
			var m events.Match
			if json.Unmarshal(e.Value(), &m) == nil {
				return m, true
			}
		}
	}
	if claims == nil || ticketID == "" {
		return events.Match{}, false
	}
	c, err := claims.Read(ctx, ticketID)
	if err != nil || c.Owner != events.MatchOwner(matchID) || c.Match == nil {
		return events.Match{}, false
	}
	var m events.Match
	if json.Unmarshal(c.Match, &m) != nil {
		return events.Match{}, false
	}
	return m, true
}

// clockSlack is how far a frontend's created_at may fall outside its
// POST's span as the load tool timed it: the same machine's clock, read
// by two processes.
const clockSlack = 50 * time.Millisecond

// traceNoShow finds the failed POST of player under way when ticket was
// created: sent before, ended after, give or take clockSlack.
func traceNoShow(ticket, player string, created time.Time, failed []FailedPost) NoShowPost {
	ns := NoShowPost{Ticket: ticket, CreatedAt: created}
	for _, f := range failed {
		if f.PlayerID != player || created.Before(f.SentAt.Add(-clockSlack)) || created.After(f.EndedAt.Add(clockSlack)) {
			continue
		}
		ns.Frontend, ns.SentAt, ns.EndedAt, ns.Failed = f.Frontend, f.SentAt, f.EndedAt, f.Failed
		break
	}
	return ns
}
