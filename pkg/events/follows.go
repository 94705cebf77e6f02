package events

import "time"

// rootFollows is the root of the frontends' questions of who follows a
// ticket (Subjects.Follows).
const rootFollows = "follows"

// rollCall is the token of Subjects.FollowsRollCall: no ticket id a
// frontend makes (FollowsRollCall says why that matters).
const rollCall = "_frontends"

// Follows is where a frontend asks every frontend whether one of its
// clients follows a ticket (core NATS, a request, every frontend
// answering with a FollowsAnswer; no stream): `follows.<ticket_id>`. It
// asks of a ticket whose client's WebSocket was lost: kept for the
// client to follow again, it is cancelled once every frontend answered
// that none of its clients follows it, so a player who went away is not
// matched for the rest of its mode's wait.
func (s Subjects) Follows(ticketID string) string { return s.join(rootFollows, ticketID) }

// FollowsRollCall is where every frontend says it is there, every
// FollowsRollCallEvery, and that it leaves when it stops (a
// RollCall): the asker waits for an answer from each frontend heard and
// not gone, so a frontend that cannot answer (cut off from NATS, its
// subscription refused) leaves the question incomplete rather than
// answered "not followed". `follows._frontends`, under AllFollows: the
// frontends hear it on the one subscription; a frontend asks of no ticket
// of that name, for it asks only of ticket ids it made.
func (s Subjects) FollowsRollCall() string { return s.join(rootFollows, rollCall) }

// AllFollows matches the questions about every ticket, and the roll call.
func (s Subjects) AllFollows() string { return s.join(rootFollows, "*") }

// FollowsAnswer is a frontend's answer to a Follows question: whether
// one of its clients follows the ticket.
type FollowsAnswer struct {
	// Frontend is the answering frontend's instance, unique to its process.
	Frontend string `json:"frontend"`
	Followed bool   `json:"followed,omitempty"`
}

// RollCall is a frontend's word on FollowsRollCall: it is there, or
// (Leaving) it stops and is to be asked no more.
type RollCall struct {
	Frontend string `json:"frontend"`
	Leaving  bool   `json:"leaving,omitempty"`
}

// Timing of the questions.
const (
	// FollowsAnswerWait is how long a Follows question waits for every
	// frontend's answer: a frontend answers from its tracker's loop, well
	// within it even under load, and the question is asked only of a
	// lost client's ticket.
	FollowsAnswerWait = time.Second
	// FollowsRollCallEvery is how often a frontend says it is there.
	FollowsRollCallEvery = 10 * time.Second
	// FollowsRollCallLife is how long a frontend heard once is expected
	// to answer, unless it said it leaves: far past a cut of minutes, for
	// a frontend cut off from NATS may have a client that follows the
	// ticket, and forgotten, the question would be complete without it.
	// A frontend that crashed keeps questions incomplete (their tickets
	// kept) that long.
	FollowsRollCallLife = 5 * time.Minute
	// FollowsListenFirst is how long a frontend listens to the roll call
	// (after it starts, or reconnects to NATS) before its questions can
	// be complete: two roll calls of every frontend there.
	FollowsListenFirst = 2*FollowsRollCallEvery + time.Second
)
