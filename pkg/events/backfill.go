package events

import (
	"context"
	"strconv"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// Backfill is a running room's request for players: the room of match
// MatchID has free seats (a player left for good, or a free-for-all opens
// early) and its mode accepts backfill. The allocator, which watches the
// game servers, publishes it on [Subjects.Backfill] of the shard that
// formed the room's match, with BackfillID as the message id, so that a
// request seen on every poll is stored once. That shard's owner fills it
// from its pool under the mode's rules, as if the room were a waiting
// ticket: Skill and Attributes stand for the room, and the request waits
// from CreatedAt, so the rules widen for it as for a ticket, until the
// mode's max wait.
//
// A request is filled at most once: the match that fills it claims
// [BackfillClaimKey] of its id together with its tickets' claims (see
// [Claims]). A room whose free seats change asks again under a new id
// (play.BackfillID).
type Backfill struct {
	SchemaVersion int `json:"schema_version"`
	// BackfillID names the request: play.BackfillID(match id, ask).
	BackfillID string `json:"backfill_id"`
	// MatchID is the room: the match played in it.
	MatchID string `json:"match_id"`
	// Ask counts the room's requests (play.Backfill.Ask): a room asks
	// anew, under a higher Ask, whenever its free seats change, so a
	// shard holds one request per room, the highest Ask it has seen.
	Ask int `json:"ask"`
	// Mode, Region and Tier are the room's match's: the shard that fills
	// the request is the one that formed the match.
	Mode   string `json:"mode"`
	Region string `json:"region"`
	Tier   string `json:"tier"`
	// Skill is the mean skill of the room's players: the anchor every
	// ticket that fills it is judged against.
	Skill int `json:"skill"`
	// Seats are the free seats of each team, indexed by the room's team,
	// less those the allocator promised to players on their way: the
	// tickets that fill team i bring at most Seats[i] players, and a
	// party sits on one team.
	Seats []int `json:"seats"`
	// Attributes are those of the room's first ticket, so the mode's
	// attribute rules hold between the room and whoever joins it.
	Attributes *Attributes `json:"attributes,omitempty"`
	// Players are those the room had or may have: every player of its
	// match (one who left it too: the room let them go), then players
	// the allocator sent to fill it, as far as its record of the room
	// keeps them. No ticket with one of them fills the request. At most
	// MaxBackfillPlayers.
	Players []string `json:"players,omitempty"`
	// CreatedAt is when the allocator published the request: its wait
	// starts there. A room that still asks after the duplicate window is
	// published again with a new time (allocator.RequestBackfills).
	CreatedAt time.Time `json:"created_at"`
}

// MaxBackfillPlayers bounds Players: a room's match's players and as
// many sent to fill it. A room's teams and seats are bounded by
// play.MaxPlayers.
const MaxBackfillPlayers = 2 * play.MaxPlayers

// Free is the number of seats the request asks to fill.
func (b *Backfill) Free() int {
	n := 0
	for _, s := range b.Seats {
		n += s
	}
	return n
}

// backfillClaimPrefix makes a backfill request's claim key. A '.' is in no
// ticket id (CheckID), so no ticket's claim can be a request's.
const backfillClaimPrefix = "backfill."

// BackfillClaimKey is the key of the claims bucket under which the one
// match that fills request backfillID claims it, together with its
// tickets (Claims.ClaimAll), so a request fills at most one match.
func BackfillClaimKey(backfillID string) string { return backfillClaimPrefix + backfillID }

// DecodeBackfill reads a backfill request and checks every field. Only
// allocators publish requests, so a field it does not know is ignored, as
// for a match (decodeFromService: a newer allocator may add one while
// older matchers run); everything it knows is checked as strictly as a
// ticket.
func DecodeBackfill(data []byte) (Backfill, error) {
	return decodeChecked("backfill", data, decodeFromService, checkBackfill)
}

// Validate checks a request built in code (the allocator builds them) by
// the same rules as DecodeBackfill.
func (b *Backfill) Validate() error {
	fe := &FieldErrors{Kind: "backfill"}
	checkBackfill(b, fe)
	return fe.Err()
}

func checkBackfill(b *Backfill, fe *FieldErrors) {
	fe.version(b.SchemaVersion)
	fe.Token("backfill_id", b.BackfillID)
	fe.Token("match_id", b.MatchID)
	if b.Ask < 0 {
		fe.Add("ask", "%d is negative", b.Ask)
	}
	fe.Token("mode", b.Mode)
	fe.Token("region", b.Region)
	fe.Token("tier", b.Tier)
	if b.Skill < MinSkill || b.Skill > MaxSkill {
		fe.Add("skill", "%d is out of range [%d, %d]", b.Skill, MinSkill, MaxSkill)
	}
	if len(b.Seats) < 2 || len(b.Seats) > play.MaxPlayers {
		fe.Add("seats", "has %d teams, want 2 to %d", len(b.Seats), play.MaxPlayers)
	}
	free := 0
	for i, s := range b.Seats {
		if s < 0 || s > play.MaxPlayers {
			fe.Add("seats["+strconv.Itoa(i)+"]", "%d is out of range [0, %d]", s, play.MaxPlayers)
			continue
		}
		free += s
	}
	if len(b.Seats) >= 2 && (free < 1 || free > play.MaxPlayers) {
		fe.Add("seats", "%d free seats in all, want 1 to %d", free, play.MaxPlayers)
	}
	b.Attributes.validate(fe)
	if len(b.Players) > MaxBackfillPlayers {
		fe.Add("players", "has %d players, at most %d allowed", len(b.Players), MaxBackfillPlayers)
	}
	for i, p := range b.Players {
		fe.Token("players["+strconv.Itoa(i)+"]", p)
	}
	if b.CreatedAt.Year() < 2000 || b.CreatedAt.Year() > 9999 {
		fe.Add("created_at", "%s is not a plausible time", b.CreatedAt.Format(time.RFC3339))
	}
}

// Backfill publishes a room's request on its shard's subject of the
// backfills stream. The request's id is the message id: the allocator
// publishes what it sees on every poll, and a request is stored once
// within the duplicate window.
func (p *Publisher) Backfill(ctx context.Context, b Backfill) error {
	b.SchemaVersion = SchemaVersion
	_, err := p.publish(ctx, p.subj.Backfill(b.Region, b.Tier), b.BackfillID, b)
	return err
}

// MatchBackfill says which request a match fills (Match.Backfill).
type MatchBackfill struct {
	// BackfillID is the request's (Backfill.BackfillID).
	BackfillID string `json:"backfill_id"`
	// MatchID is the room the players join: the match it was allocated for.
	MatchID string `json:"match_id"`
}

// check checks the backfill of a match; nil is a match of its own room.
func (b *MatchBackfill) check(fe *FieldErrors) {
	if b == nil {
		return
	}
	fe.Token("backfill.backfill_id", b.BackfillID)
	fe.Token("backfill.match_id", b.MatchID)
}

// ClaimKeys are the claims a commit of m takes, all or none (Claims.ClaimAll):
// its tickets' and, for a match that fills a backfill request, the
// request's (BackfillClaimKey).
func (m *Match) ClaimKeys() []string {
	keys := make([]string, 0, len(m.Tickets)+1)
	if m.Backfill != nil {
		keys = append(keys, BackfillClaimKey(m.Backfill.BackfillID))
	}
	for _, t := range m.Tickets {
		keys = append(keys, t.TicketID)
	}
	return keys
}
