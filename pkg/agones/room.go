package agones

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// The contract between the allocator and the game server, kept where
// Agones keeps state so that a game server that restarts in place, or is
// reused for hours, sees exactly the rooms that are live:
//
//   - An allocation adds the match id to the rooms List and the match's
//     players to the players List (selectors ask for room in both, since
//     Agones truncates an allocation's addValues at a list's capacity
//     without an error), and writes the room's annotation.
//   - The game server opens a room for every id in the rooms List, reads
//     its players from the annotation, and when the room ends removes the
//     id from the rooms List and its players from the players List.
//   - A room that accepts backfill (Room.AcceptsBackfill) and loses a player for
//     good asks for another as the annotation BackfillAnnotation(id),
//     which the game server sets through the SDK, and keeps the players
//     List to who holds its seats: it removes the gone player and adds
//     the one the allocator sent (a backfill join token), whom the room
//     annotation never names.
//
// Agones never removes an annotation an allocation added, so annotations
// alone say which rooms were ever allocated, not which are live: only
// the rooms List does. A List cannot leave its range: removing a value
// that is not there fails with "not found" and changes nothing, where a
// counter decremented twice went below zero.
const (
	// ListRooms lists the match ids of the rooms live on a game server;
	// its capacity is how many it may host at once.
	ListRooms = "rooms"
	// ListPlayers lists the players of the live rooms; its capacity is
	// rooms per server times the seats of the largest room.
	ListPlayers = "players"
	// MatchAnnotationPrefix + match id is set on the GameServer by the
	// allocation; its value is the room (EncodeRoom).
	MatchAnnotationPrefix = "quickmatch.dev/match-"
	// RegionLabel is the label naming a Fleet's region by default; the
	// FleetAutoscaler webhook sizes each fleet from its region's demand.
	RegionLabel = "quickmatch.dev/region"
	// RoomsPerServerLabel on a Fleet is its rooms List's capacity in its
	// spec: the most rooms the FleetAutoscaler webhook counts a server
	// for. The Fleet's status sums what its servers' SDKs set, and a
	// compromised server may raise its List's capacity.
	RoomsPerServerLabel = "quickmatch.dev/rooms-per-server"
	// MaxListCapacity is Agones' limit on a List's capacity (and so on
	// its values): the most rooms a server may host.
	MaxListCapacity = 1000
	// RetiringLabel is set (through the SDK, hence the prefix) by a game
	// server that takes no more rooms: its allocation annotations, which
	// Agones never removes, near the 256 KiB an object's annotations may
	// hold. Selectors pass it over; it shuts down after its last room
	// instead of going back to Ready.
	RetiringLabel = "agones.dev/sdk-" + RetiringKey
	// RetiringKey is the key the game server gives SetLabel.
	RetiringKey = "retiring"
)

// Room is the match a game server hosts in one room: its mode and its
// players by team, each team of SeatsPerTeam seats. A free-for-all is a
// room of more than two teams of one seat; a match that starts early
// leaves some of them empty.
type Room struct {
	Mode  string     `json:"mode"`
	Teams [][]string `json:"teams"`
	// AcceptsBackfill says the mode accepts backfill: a room that loses a
	// player for good frees the seat and asks for another
	// (BackfillAnnotation). `backfill` in JSON: annotations already
	// written keep that key.
	// The allocator writes it from the match. Teams stays the players of
	// the allocation: Agones never rewrites the annotation, so a
	// backfilled player is never in it.
	AcceptsBackfill bool `json:"backfill,omitempty"`
	// TeamSize is the seats of each team when the room has more seats than
	// the allocation seats: a match that starts early (events.Match.Teams,
	// TeamSize) names players on fewer teams, or fewer players on a team,
	// than the room has seats, and every team the allocation left short
	// starts with free seats (an empty team is []). Zero: every team has
	// as many seats as Teams[0] has players (a full match, or an
	// allocator before early starts). SeatsPerTeam reads either.
	TeamSize int `json:"team_size,omitempty"`
}

// MaxMatchIDLen is the longest match id whose annotation keys Kubernetes
// accepts: the name after the prefix ("quickmatch.dev/", "agones.dev/")
// may be 63 characters, and the longer of the two names a room has,
// "sdk-backfill-<id>" (BackfillAnnotation, set through the SDK), takes 13
// of them ("match-<id>" takes 6). Match ids are 25 characters
// (events.MatchID).
const MaxMatchIDLen = 63 - len(sdkPrefixName+backfillKeyPrefix)

// sdkPrefixName is the name part the SDK puts before every key set
// through it: annotation key k is stored as "agones.dev/sdk-k".
const sdkPrefixName = "sdk-"

// backfillKeyPrefix + match id is the key the game server gives
// SetAnnotation for its room's backfill request.
const backfillKeyPrefix = "backfill-"

// BackfillKey is the key the game server gives SetAnnotation for the
// backfill request of match matchID's room; the GameServer then carries
// it as BackfillAnnotation(matchID).
func BackfillKey(matchID string) string { return backfillKeyPrefix + matchID }

// BackfillAnnotation is the GameServer annotation that holds the backfill
// request of match matchID's room: "agones.dev/sdk-backfill-<matchID>"
// (the SDK prefixes every key it sets). Its value is the request as JSON
// (play.Backfill), or "" when the room asks for nobody: the SDK cannot
// delete an annotation, so a room whose seats are filled, or that ended,
// sets it to "". Like the room annotation it stays on the GameServer for
// its whole life, so only a room in the rooms List asks.
func BackfillAnnotation(matchID string) string {
	return "agones.dev/" + sdkPrefixName + BackfillKey(matchID)
}

// Players lists every player of the room, team by team.
func (r Room) Players() []string {
	var ps []string
	for _, t := range r.Teams {
		ps = append(ps, t...)
	}
	return ps
}

// EncodeRoom is the annotation value of r. A team without players is
// written [], never null, whether r holds it as nil or empty.
func EncodeRoom(r Room) string {
	if slices.ContainsFunc(r.Teams, func(t []string) bool { return t == nil }) {
		teams := slices.Clone(r.Teams) // not r's: the caller keeps its room
		for i, t := range teams {
			if t == nil {
				teams[i] = []string{}
			}
		}
		r.Teams = teams
	}
	b, _ := json.Marshal(r) // strings only: cannot fail
	return string(b)
}

// DecodeRoom reads an annotation value: a room Check refuses is an
// error, not a room with a guessed shape. A team without players reads
// as [], however it was written. A game server older than TeamSize
// refuses a room with an empty team (as a match that starts early,
// filling fewer teams than its room has, always leaves one), so it never
// seats one as a smaller room.
// A field it does not know is ignored, unlike the strict decoders of
// pkg/events: allocators roll out before a Fleet's game servers are all
// replaced, and a field a newer allocator adds must not make every new
// room unreadable on the older servers still running.
func DecodeRoom(v string) (Room, error) {
	dec := json.NewDecoder(strings.NewReader(v))
	var r Room
	if err := dec.Decode(&r); err != nil {
		return Room{}, fmt.Errorf("room annotation: %w", err)
	}
	if dec.More() {
		return Room{}, errors.New("room annotation: data after the room")
	}
	if err := r.Check(); err != nil {
		return Room{}, fmt.Errorf("room annotation: %w", err)
	}
	for i, t := range r.Teams {
		if t == nil {
			r.Teams[i] = []string{}
		}
	}
	return r, nil
}

// SeatsPerTeam is how many players each team of r seats: TeamSize, or
// without it team 0's players (every team has as many: Check).
func (r Room) SeatsPerTeam() int {
	if r.TeamSize != 0 || len(r.Teams) == 0 {
		return r.TeamSize
	}
	return len(r.Teams[0])
}

// Check says whether a game server can seat r: two teams at least, of
// SeatsPerTeam seats each and at most play.MaxPlayers seats in all (with
// TeamSize, a team may be short or empty; without it every team is
// full), no team over its seats, every player named and on one seat
// only, and players on two teams at least (a game of one team is no
// match). The allocator builds a room by it (RoomOf) and the game server
// reads one by it (DecodeRoom).
func (r Room) Check() error {
	size := r.SeatsPerTeam()
	if r.TeamSize < 0 || !play.ValidShape(len(r.Teams), size) {
		return fmt.Errorf("%d teams of %d seats, want 2 teams or more and at most %d seats", len(r.Teams), size, play.MaxPlayers)
	}
	seen := map[string]bool{}
	playing := 0 // teams with players
	for i, t := range r.Teams {
		switch {
		case len(t) > size || r.TeamSize == 0 && len(t) < size:
			return fmt.Errorf("team %d has %d players, %d seats", i, len(t), size)
		case len(t) > 0:
			playing++
		}
		for _, p := range t {
			if p == "" || seen[p] {
				return fmt.Errorf("player %q empty or seated twice", p)
			}
			seen[p] = true
		}
	}
	if playing < 2 {
		return fmt.Errorf("players on %d team(s), want at least 2", playing)
	}
	return nil
}

// RoomFits is what a game server must have free to host r: a room, and a
// seat on the players List for every player (without it Agones picks a
// server whose list is full and cuts the values silently).
func RoomFits(r Room) map[string]ListSelector {
	return map[string]ListSelector{
		ListRooms:   {MinAvailable: 1},
		ListPlayers: {MinAvailable: int64(len(r.Players()))},
	}
}

// RoomActions are what an allocation of room r for match matchID writes:
// the room annotation, the match id on the rooms List and the players on
// the players List.
func RoomActions(matchID string, r Room) (*MetaPatch, map[string]ListAction) {
	meta := &MetaPatch{Annotations: map[string]string{MatchAnnotationPrefix + matchID: EncodeRoom(r)}}
	return meta, map[string]ListAction{
		ListRooms:   {AddValues: []string{matchID}},
		ListPlayers: {AddValues: r.Players()},
	}
}

// EncodeBackfill is the value of BackfillAnnotation(b.MatchID) for b.
func EncodeBackfill(b play.Backfill) string {
	v, _ := json.Marshal(b) // strings and ints only: cannot fail
	return string(v)
}

// DecodeBackfill reads the value of a BackfillAnnotation: "" is no
// request (ok false, no error); a request with no match id, no free seat
// or a negative one is an error. Unknown fields are ignored, as in
// DecodeRoom, so game servers may roll out before allocators.
func DecodeBackfill(v string) (b play.Backfill, ok bool, err error) {
	if v == "" {
		return play.Backfill{}, false, nil
	}
	dec := json.NewDecoder(strings.NewReader(v))
	if err := dec.Decode(&b); err != nil {
		return play.Backfill{}, false, fmt.Errorf("backfill annotation: %w", err)
	}
	if dec.More() {
		return play.Backfill{}, false, errors.New("backfill annotation: data after the request")
	}
	if b.MatchID == "" || len(b.Seats) < 2 || len(b.Seats) > play.MaxPlayers {
		return play.Backfill{}, false, fmt.Errorf("backfill annotation: match %q with %d teams", b.MatchID, len(b.Seats))
	}
	for i, s := range b.Seats {
		if s < 0 || s > play.MaxPlayers {
			return play.Backfill{}, false, fmt.Errorf("backfill annotation: %d free seats on team %d", s, i)
		}
	}
	if b.Free() == 0 {
		return play.Backfill{}, false, errors.New("backfill annotation: no free seat")
	}
	return b, true, nil
}
