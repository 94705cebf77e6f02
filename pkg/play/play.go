package play

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// MaxPlayers bounds a match, and so a room: a mode has at most this many
// players (teams x team size), a room as many seats. Every package that
// checks a match's, a room's, a seat's or a request's size checks it
// against this one bound (ValidShape).
const MaxPlayers = 100

// ValidShape reports whether teams of size seats each make a room: two
// teams or more, a seat or more each, at most MaxPlayers seats in all.
// Each factor is bounded before the product, which could overflow.
func ValidShape(teams, size int) bool {
	return teams >= 2 && size >= 1 && teams <= MaxPlayers && size <= MaxPlayers && teams*size <= MaxPlayers
}

// Paths a game server serves.
const (
	// PagePath is the play page: the URL of an assignment (see URL).
	PagePath = "/play"
	// SocketPath is the WebSocket the page opens to join its room; it
	// takes the page's query (see SocketURL).
	SocketPath = "/ws"
	// StatusPath answers a Status as JSON.
	StatusPath = "/status"
)

// Query parameters of PagePath and SocketPath.
const (
	// ParamRoom names the room to join: its value is the match id.
	ParamRoom = "room"
	// ParamToken is the join token the allocator signed for one player of
	// the match.
	ParamToken = "token"
	// ParamResume is the resume key of a player coming back (SocketPath
	// only): a join token admits once, and the welcome message gives the
	// key that takes the seat again.
	ParamResume = "resume"
	// ParamTrace is the W3C traceparent of the allocation that sent the
	// player (pkg/tracing), so the game server's join continues the
	// match's trace. Only a hint for tracing: the server parses it as
	// data and nothing else depends on it.
	ParamTrace = "traceparent"
)

// Status is the body of StatusPath: the allocator's local backend reads it
// to find servers with free rooms, as the Agones backend reads the rooms
// counter.
type Status struct {
	// Rooms is the number of rooms open now.
	Rooms int `json:"rooms"`
	// MaxRooms is how many rooms may be open at once.
	MaxRooms int `json:"max_rooms"`
	// Open lists the rooms open now, by match id, sorted: the allocator
	// keeps the records a room's backfill needs for as long as the room
	// shows here, however long its game lasts. Under Agones the
	// GameServer's rooms List says it (agones.ListRooms).
	Open []string `json:"open,omitempty"`
	// Backfill lists the requests of the rooms asking for players now, one
	// per room, in no particular order; a room that asks no more is gone
	// from it. Under Agones the same requests are annotations
	// (agones.BackfillAnnotation).
	Backfill []Backfill `json:"backfill,omitempty"`
	// Seated are the players holding a seat in the rooms Backfill lists,
	// each once, at most MaxSeated, from the same moment as Backfill: a
	// player the allocator sent to fill a seat holds it from when they
	// are seated, not until their join token expires. Under Agones the
	// players List of the GameServer says it (agones.ListPlayers).
	Seated []string `json:"seated,omitempty"`
}

// MaxSeated bounds Status.Seated: as many players as the players List
// of a GameServer holds at most (Agones caps a List at 1000 values). A
// player left out is only not known to be seated yet.
const MaxSeated = 1000

// Backfill is a room asking for players: it has free seats and its mode
// accepts backfill. A player admitted to a free seat holds a join token
// for the room's match with a seat on a team that has one.
type Backfill struct {
	MatchID string `json:"match_id"` // the room
	Ask     int    `json:"ask"`      // counts the room's requests: a new Ask for each change of its free seats, so (MatchID, Ask) names one request
	Seats   []int  `json:"seats"`    // free seats per team, indexed by team
}

// BackfillID names the request Ask of match matchID's room:
// "<matchID>-b<ask>". A request is filled at most once under its id, and
// a room whose free seats change asks again under a new one.
func BackfillID(matchID string, ask int) string {
	return matchID + "-b" + strconv.Itoa(ask)
}

// Free is the number of free seats the request asks to fill.
func (b Backfill) Free() int {
	n := 0
	for _, s := range b.Seats {
		n += s
	}
	return n
}

// Free is the number of rooms that may still open.
func (s Status) Free() int { return s.MaxRooms - s.Rooms }

// Join is what a player presents to join a room: the query of both the
// page URL and the WebSocket URL.
type Join struct {
	MatchID string // ParamRoom
	Token   string // ParamToken
	Resume  string // ParamResume; empty on a first join
	Trace   string // ParamTrace; empty when the allocation was not traced
}

// Query is j as query parameters; Resume and Trace only when set.
func (j Join) Query() url.Values {
	q := url.Values{ParamRoom: {j.MatchID}, ParamToken: {j.Token}}
	if j.Resume != "" {
		q.Set(ParamResume, j.Resume)
	}
	if j.Trace != "" {
		q.Set(ParamTrace, j.Trace)
	}
	return q
}

// ParseJoin reads a Join from the query of a page or WebSocket request.
// Missing parameters are empty: the token check refuses them.
func ParseJoin(q url.Values) Join {
	return Join{MatchID: q.Get(ParamRoom), Token: q.Get(ParamToken), Resume: q.Get(ParamResume), Trace: q.Get(ParamTrace)}
}

// URL is the play page of match matchID on the game server at base
// ("http://host:port"), for the player whose join token is token:
// base/play?room=<matchID>&token=<token>.
func URL(base, matchID, token string) string {
	return Join{MatchID: matchID, Token: token}.PageURL(base)
}

// PageURL is the play page at base for j: base/play?<query of j>. The
// allocator builds it with j.Trace set when the allocation is traced.
func (j Join) PageURL(base string) string {
	return strings.TrimSuffix(base, "/") + PagePath + "?" + j.Query().Encode()
}

// SocketURL is the WebSocket that joins j's room on the game server at base:
// base/ws?<query of j>. An http(s) base becomes ws(s); a ws(s) base is used
// as it is.
func SocketURL(base string, j Join) string {
	switch {
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	}
	return strings.TrimSuffix(base, "/") + SocketPath + "?" + j.Query().Encode()
}

// ParseURL splits a play page URL (as URL builds it) into the base of its
// game server ("scheme://host:port") and the Join it carries; with
// SocketURL it gives the WebSocket a client opens.
func ParseURL(raw string) (base string, j Join, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", Join{}, err
	}
	if u.Scheme == "" || u.Host == "" {
		return "", Join{}, fmt.Errorf("play URL %q: want scheme://host:port%s?query", raw, PagePath)
	}
	return u.Scheme + "://" + u.Host, ParseJoin(u.Query()), nil
}
