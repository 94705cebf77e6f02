package events

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// Match is a formed match, published by a matcher on [Subjects.Allocation]
// for the allocator, which finds it a game server.
type Match struct {
	SchemaVersion int    `json:"schema_version"`
	MatchID       string `json:"match_id"`
	Mode          string `json:"mode"`
	Region        string `json:"region"`
	Tier          string `json:"tier"`
	// Tickets are the matched tickets with the team each one plays on.
	Tickets   []MatchTicket `json:"tickets"`
	CreatedAt time.Time     `json:"created_at"`
	// AcceptsBackfill says the match's mode accepts backfill: its room
	// asks for players when it loses one (agones.Room.AcceptsBackfill,
	// jointoken.Seat.AcceptsBackfill say so to the game server).
	AcceptsBackfill bool `json:"accepts_backfill,omitempty"`
	// Backfill is set on a match that fills a running room's request
	// (see [Backfill]): its players join that room, on the room's teams
	// (MatchTicket.Team), and no new game server is allocated.
	Backfill *MatchBackfill `json:"backfill,omitempty"`
	// Teams and TeamSize are the shape of the room the match opens when
	// it has more seats than the match fills: a match that started early
	// (rules.Mode.StartEarly) fills fewer teams than its mode has, and
	// the room keeps a seat for every player of a full match, the seats
	// no ticket takes free from the start (for backfill). Zero for a full
	// match (and in matches from a matcher before early starts): the room
	// is exactly the teams the tickets fill. Never set with Backfill.
	Teams    int `json:"teams,omitempty"`
	TeamSize int `json:"team_size,omitempty"`
}

// MatchTicket is one ticket of a match.
type MatchTicket struct {
	TicketID string   `json:"ticket_id"`
	Players  []string `json:"players"`
	Team     int      `json:"team"`
	// Skill, CreatedAt, LatenciesMS and Attributes are the ticket's, kept
	// so that a ticket requeued when no game server can be found keeps its
	// shard, its wait and what the rules compare.
	Skill       int            `json:"skill"`
	CreatedAt   time.Time      `json:"created_at"`
	LatenciesMS map[string]int `json:"latencies_ms,omitempty"`
	Attributes  *Attributes    `json:"attributes,omitempty"`
	// Tier is the tier of the ticket's own shard when it is not the
	// match's: a ticket offered across a tier bound (its skill belongs to
	// Tier), which a requeue must publish on its own shard's subject.
	Tier string `json:"tier,omitempty"`
}

// Players lists every player of the match in ticket order.
func (m *Match) Players() []string {
	var ps []string
	for _, t := range m.Tickets {
		ps = append(ps, t.Players...)
	}
	return ps
}

// TicketPlayers maps each ticket of the match to its players, as
// [Players.Stale] takes them.
func (m *Match) TicketPlayers() map[string][]string {
	out := make(map[string][]string, len(m.Tickets))
	for _, t := range m.Tickets {
		out[t.TicketID] = t.Players
	}
	return out
}

// MatchID names the match made of exactly these ticket messages (each
// named by [MatchKey]), whatever their order. A matcher that forms the same
// match again after a redelivery gets the same id, and the id is the
// Nats-Msg-Id of the allocation request, so the allocator sees it once.
// Tickets queued again (the allocator found no server) come back as new
// messages, so matching them together again makes a new match, which the
// allocator sees too.
func MatchID(keys []string) string {
	ids := slices.Clone(keys)
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return "m" + hex.EncodeToString(h.Sum(nil)[:12])
}

// MatchKey names one ticket of a match for [MatchID]: its id and the stream
// sequence of the message that brought it to the shard.
func MatchKey(ticketID string, seq uint64) string {
	return ticketID + "@" + strconv.FormatUint(seq, 10)
}

// VisitorMatchKey is MatchKey for a ticket that came to the shard as a
// visitor, by the offers stream, whose sequences are a count of their own:
// two shards matching the same tickets, one holding a ticket at home and
// the other as a visitor of the same sequence number, must never name two
// different matches (other teams) alike.
func VisitorMatchKey(ticketID string, seq uint64) string {
	return ticketID + "@offers." + strconv.FormatUint(seq, 10)
}

// MatchIDAfter names a match of the ticket messages keys whose id
// (MatchID) is taken by prev, a match that was undone although none of its
// tickets was stale (its claims were released as a dead matcher's). Its
// decision stands for good, so the same tickets matched together again
// need a new id, or every commit of them would follow prev's decision.
func MatchIDAfter(prev string, keys []string) string {
	return MatchID(append(slices.Clip(keys), "after "+prev))
}

// DecodeMatch reads an allocation request and checks every field. Only
// matchers publish matches, so a field it does not know is ignored (see
// decodeFromService); everything it knows is checked as strictly as a
// ticket.
func DecodeMatch(data []byte) (Match, error) {
	return decodeChecked("match", data, decodeFromService, checkMatch)
}

func checkMatch(m *Match, fe *FieldErrors) {
	fe.version(m.SchemaVersion)
	fe.Token("match_id", m.MatchID)
	fe.Token("mode", m.Mode)
	fe.Token("region", m.Region)
	m.Backfill.check(fe)
	m.checkShape(fe)
	if len(m.Tickets) < 1 {
		fe.Add("tickets", "empty")
	}
	// Field names are built only for an error: a match is decoded once per
	// allocation, and nearly every one is valid.
	field := func(i int) string { return "tickets[" + strconv.Itoa(i) + "]" }
	for i, t := range m.Tickets {
		if err := checkToken(t.TicketID); err != nil {
			fe.Add(field(i)+".ticket_id", "%v", err)
		}
		if len(t.Players) == 0 {
			fe.Add(field(i)+".players", "empty")
		}
		for j, p := range t.Players {
			if err := checkToken(p); err != nil {
				fe.Add(field(i)+".players["+strconv.Itoa(j)+"]", "%v", err)
			}
		}
	}
}

// checkShape checks the room shape of a match that starts early: a room
// a mode can have (play.ValidShape), which its tickets fit, and never on
// a backfill, whose room exists. The allocator sizes the room by it.
func (m *Match) checkShape(fe *FieldErrors) {
	if m.Teams == 0 && m.TeamSize == 0 {
		return
	}
	if m.Backfill != nil {
		fe.Add("teams", "a backfill fills a running room: no shape")
	}
	if m.Teams < 2 || m.Teams > play.MaxPlayers {
		fe.Add("teams", "%d: want 2 to %d", m.Teams, play.MaxPlayers)
		return
	}
	if !play.ValidShape(m.Teams, m.TeamSize) {
		fe.Add("team_size", "%d teams of %d: want 1 or more, at most %d seats", m.Teams, m.TeamSize, play.MaxPlayers)
		return
	}
	seated := make([]int, m.Teams)
	for i, t := range m.Tickets {
		if t.Team < 0 || t.Team >= m.Teams || seated[t.Team]+len(t.Players) > m.TeamSize {
			fe.Add("tickets["+strconv.Itoa(i)+"].team", "%d: not a team of %d seats of the room's %d", t.Team, m.TeamSize, m.Teams)
			continue
		}
		seated[t.Team] += len(t.Players)
	}
}
