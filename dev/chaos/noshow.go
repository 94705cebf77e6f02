package chaos

// A no-show is a ticket assigned that no client acknowledged (Check). It
// is traced here to the POST that created it: its player's POST that
// failed while the ticket was created (its created_at, from its match's
// record). A POST that answered nothing (post_error: its connection
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
// "no_record": its match's record could not be read).
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
// failed POST, reading its creation time from its match's record; names
// maps a frontend's base URL to its name.
func traceNoShows(ctx context.Context, js jetstream.JetStream, noShows []events.Result, failed []FailedPost, names map[string]string) []NoShowPost {
	kv, err := js.KeyValue(ctx, events.Subjects{}.MatchesBucket())
	var out []NoShowPost
	for _, r := range noShows {
		ns := NoShowPost{Ticket: r.TicketID, Failed: "no_record"}
		if created, ok := createdAt(ctx, kv, err, r); ok {
			ns = traceNoShow(r.TicketID, r.PlayerID, created, failed)
			ns.Frontend = names[ns.Frontend]
		}
		out = append(out, ns)
	}
	return out
}

// createdAt is ticket r.TicketID's created_at, from the record of the
// match r assigns it to.
func createdAt(ctx context.Context, kv jetstream.KeyValue, kvErr error, r events.Result) (time.Time, bool) {
	if kvErr != nil || r.MatchID == "" {
		return time.Time{}, false
	}
	e, err := kv.Get(ctx, r.MatchID)
	if err != nil {
		return time.Time{}, false
	}
	var m events.Match
	if json.Unmarshal(e.Value(), &m) != nil {
		return time.Time{}, false
	}
	for _, t := range m.Tickets {
		if t.TicketID == r.TicketID {
			return t.CreatedAt, true
		}
	}
	return time.Time{}, false
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
