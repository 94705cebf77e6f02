package events

import "time"

// rootFollows is the root of the followers' questions (Subjects.Follows).
const rootFollows = "follows"

// Follows is where a frontend asks every frontend whether one of its
// clients follows a ticket (core NATS, request and replies, no stream):
// `follows.<ticket_id>`. It asks of a ticket whose client's WebSocket
// was lost: kept for the client to follow again, it is cancelled when no
// frontend answers FollowedHere within FollowsAnswerWait, so a player
// who went away is not matched for the rest of its mode's wait. Every
// frontend answers, the asker included (its answer shows the question
// went round): FollowedHere or NotFollowedHere.
func (s Subjects) Follows(ticketID string) string { return s.join(rootFollows, ticketID) }

// AllFollows matches the questions about every ticket.
func (s Subjects) AllFollows() string { return s.join(rootFollows, "*") }

// The answers to a Follows question.
var (
	FollowedHere    = []byte("followed")
	NotFollowedHere = []byte("not followed")
)

// FollowsAnswerWait is how long a Follows question waits for answers:
// a frontend answers from its tracker's loop, well within it even under
// load, and the question is asked only of a lost client's ticket.
const FollowsAnswerWait = time.Second
