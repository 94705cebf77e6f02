package events

import (
	"slices"
	"time"
)

// Status is where a ticket stands. Queued, matched and assigned follow each
// other; cancelled, expired, failed and assigned are terminal.
type Status string

// The statuses of a ticket.
const (
	StatusQueued    Status = "queued"
	StatusMatched   Status = "matched"
	StatusAssigned  Status = "assigned"
	StatusCancelled Status = "cancelled"
	StatusExpired   Status = "expired"
	StatusFailed    Status = "failed"
)

var allStatuses = []Status{StatusQueued, StatusMatched, StatusAssigned, StatusCancelled, StatusExpired, StatusFailed}

// Terminal reports whether nothing more will happen to the ticket.
func (s Status) Terminal() bool {
	return s == StatusAssigned || s == StatusCancelled || s == StatusExpired || s == StatusFailed
}

// Result tells one player what happened to one of their tickets. It is
// published on the player's [Subjects.Result] subject and kept in the RESULTS
// stream, so a client that asks later still gets it.
type Result struct {
	SchemaVersion int    `json:"schema_version"`
	TicketID      string `json:"ticket_id"`
	PlayerID      string `json:"player_id"`
	Status        Status `json:"status"`
	MatchID       string `json:"match_id,omitempty"`
	// Assignment is set when Status is assigned.
	Assignment *Assignment `json:"assignment,omitempty"`
	// Reason says why, for expired, failed and cancelled.
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Assignment is where a player goes to play: a game server and a room on it.
type Assignment struct {
	// Server names the game server (the Agones GameServer name).
	Server  string `json:"server"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// URL is what a browser opens; it carries the room and the join token.
	URL string `json:"url"`
	// Room is the room on the server; it is the match id.
	Room string `json:"room"`
	// JoinToken admits this player, and no one else, to this room.
	JoinToken string `json:"join_token"`
	MatchID   string `json:"match_id"`
}

// DecodeResult reads a result strictly.
func DecodeResult(data []byte) (Result, error) {
	return decodeChecked("result", data, DecodeStrict, func(r *Result, fe *FieldErrors) {
		fe.version(r.SchemaVersion)
		fe.Token("ticket_id", r.TicketID)
		fe.Token("player_id", r.PlayerID)
		if !slices.Contains(allStatuses, r.Status) {
			fe.Add("status", "unknown status %q", r.Status)
		}
		if r.Status == StatusAssigned && r.Assignment == nil {
			fe.Add("assignment", "required when status is assigned")
		}
	})
}
