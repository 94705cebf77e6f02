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

// handover is the token of Subjects.FollowsHandover (as rollCall, no
// ticket id a frontend makes).
const handover = "_handover"

// FollowsHandover is where a frontend that stops hands the tickets it
// would have asked about (its lost clients', and those of the clients
// it let go with 1012 to follow elsewhere) to one other frontend (a
// Handover, core NATS, the queue group FollowsHandoverQueue), which asks
// about them in its stead: a stopped frontend asks no more, and the
// tickets of clients that did not come back would be matched until their
// mode's max_wait. Each is a request its taker answers
// (HeaderHandoverTaken), so that the sender can say whether it was
// taken. `follows._handover`, under AllFollows: every frontend's
// questions' subscription hears it too, and answers nothing (an id
// starting with "_" is no ticket's). None took it (the last frontend
// stopping, an older version's): the tickets are kept, as before the
// handover.
func (s Subjects) FollowsHandover() string { return s.join(rootFollows, handover) }

// FollowsHandoverQueue is the frontends' queue group on FollowsHandover:
// one frontend takes each Handover.
const FollowsHandoverQueue = "frontends"

// Handover is a stopping frontend's tickets to ask about (FollowsHandover),
// at most MaxHandoverTickets a message, and the frontends it heard at the
// roll call (Roster: by instance, how many milliseconds ago, at most
// MaxHandoverRoster): a taker that started during a cut never heard a
// frontend cut off then, whose client may follow a ticket handed over,
// and would find its question complete without it.
type Handover struct {
	Frontend string           `json:"frontend"`
	Tickets  []string         `json:"tickets"`
	Roster   map[string]int64 `json:"roster,omitempty"`
}

// HeaderHandoverTaken is on a taker's answer to a Handover (sent as a
// request): how many of its ticket ids it took. The sender waits for an
// answer with it, as a frontend's question handler answers every request
// under AllFollows (an older version's, the "_handover" ticket too).
const HeaderHandoverTaken = "Quickmatch-Handover-Taken"

// MaxHandoverRoster bounds a Handover's roster taken in: far more
// frontends than one deployment runs.
const MaxHandoverRoster = 1000

// MaxHandoverTickets bounds a Handover's tickets: 1,000 ids of at most 64
// bytes, about 67 kB, far within NATS's default max payload (1 MB).
const MaxHandoverTickets = 1000

// AllFollows matches the questions about every ticket, the roll call and
// the handovers.
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
