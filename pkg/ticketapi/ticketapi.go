// Package ticketapi is the frontend's HTTP contract for tickets, declared
// once: the request a client POSTs (and the /ws query that carries it:
// Request.WSQuery, RequestFromQuery), the ticket it gets back (the 202, a
// GET, every Server-Sent Event and /ws/events message), the error body of
// every refusal and its texts (OverloadedError, RegionFullError,
// DrainedReason), the close codes and reasons of a WebSocket
// (RetryAfterCloseReason), and the paths, headers and event names of the
// API. The frontend (services/frontend/internal/api, tickets, capacity,
// drain) writes every one of them from here and the Go client
// (pkg/client) reads them from here, so the two cannot drift; each
// builder has its parser beside it, and a test makes the round trip.
// openapi.yaml describes the same shapes for other languages.
//
// The payload's own parts (status, assignment, attributes, a field's
// error) are pkg/events' types: one contract from the bus to the player.
//
// # What a client does with a broken answer or a long Retry-After
//
// One policy for every client of this API (pkg/client, clients/ts):
//
//   - An answer that breaks this contract is malformed: not JSON, a
//     status no View has, an event of another ticket than the one asked
//     for, "assigned" without its assignment or with an assignment URL
//     that ValidAssignmentURL refuses. It ends the call and is
//     never retried: the same server would send the same again, and a
//     client that retries it hides the fault. (A connection that breaks,
//     ends before the outcome or goes silent is no malformed answer: an
//     event stream is resumed with Last-Event-ID.)
//   - A Retry-After (a header, or a 1013 close reason) is waited, capped
//     by the client's longest wait (pkg/client: Config.MaxRetryAfter, 1
//     min by default): a longer one is waited as the cap, so that a
//     hostile figure cannot park a client, and a long honest one (a
//     drain's) does not make it give up on a ticket it follows. (The
//     frontend asks 1-3 s for overload, more as its refusals outnumber
//     its admissions (15 s at most), 5 s for a full region, 30 s for a
//     drain.) It is waited and up to half of it again, at random:
//     every client of a frontend that restarts is told the same, and
//     waiting it exactly brought them all back in one moment.
//   - A creation sent again with its Idempotency-Key after an attempt
//     that may have made its ticket (every failure but those
//     CreatedNothing names) says so (HeaderRepeat): past its limit a
//     frontend answers it from that ticket, where it refuses a new
//     creation unread.
//
// How long a client keeps trying is the caller's: pkg/client until its
// context ends.
package ticketapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Request is what a client asks for: the body of POST /v1/tickets
// (openapi.yaml's TicketRequest).
type Request struct {
	TicketID    string         `json:"ticket_id,omitempty"`
	PlayerID    string         `json:"player_id,omitempty"`
	Party       []string       `json:"party,omitempty"`
	Mode        string         `json:"mode,omitempty"`
	Skill       *int           `json:"skill"`
	Region      string         `json:"region"`
	LatenciesMS map[string]int `json:"latencies_ms,omitempty"`
	// Attributes are the ticket's attributes (events.Attributes), which
	// the rule set must declare.
	Attributes *events.Attributes `json:"attributes,omitempty"`
}

// View is a ticket as a client sees it: it is openapi.yaml's Ticket (and
// the TypeScript client's), named View here because the frontend's own
// Ticket is the bus's (events.Ticket). Its shard is spelled out as region
// and tier.
type View struct {
	TicketID   string             `json:"ticket_id"`
	Status     events.Status      `json:"status"`
	Region     string             `json:"region,omitempty"`
	Tier       string             `json:"tier,omitempty"`
	Mode       string             `json:"mode,omitempty"`
	MatchID    string             `json:"match_id,omitempty"`
	Reason     string             `json:"reason,omitempty"`
	Assignment *events.Assignment `json:"assignment,omitempty"`
	// ExpectedWaitMS is, while the ticket is queued, the expected wait
	// of its shard and mode (events.QueueStats), filled in by the API;
	// left out when unknown.
	ExpectedWaitMS int64 `json:"expected_wait_ms,omitempty"`
}

// ValidAssignmentURL reports whether u may be an assignment's URL: an
// absolute http or https URL, written with "//", with a host name. A
// game client opens that URL (a browser goes there), so a hostile or
// broken server must not hand it javascript:, file: or data:; a client
// refuses an "assigned" view whose URL this refuses as malformed (the
// policy above). The one declaration of the rule: pkg/client calls it,
// and the TypeScript client's isWebURL (clients/ts/src/types.ts) follows
// it, tested on the same cases (testdata/assignment_urls.json). The
// allocator's play page URLs (http://address:port/play?...) pass.
func ValidAssignmentURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	s := strings.ToLower(p.Scheme)
	return (s == "http" || s == "https") && p.Hostname() != ""
}

// ErrorBody is every error answer.
type ErrorBody struct {
	Error  string              `json:"error"`
	Fields []events.FieldError `json:"fields,omitempty"`
	// SuggestRegion is a region with free rooms, when this one is full.
	SuggestRegion string `json:"suggest_region,omitempty"`
	// Drained: the ticket's shard is drained by an operator.
	Drained *DrainedBody `json:"drained,omitempty"`
}

// DrainedBody is the shard an operator drained, and why.
type DrainedBody struct {
	Shard  string `json:"shard"`
	Reason string `json:"reason"`
}

// OverloadedPrefix starts the error of a creation refused by overload
// control (a 503, like a full region or a drain, which the body's other
// fields name).
const OverloadedPrefix = "overloaded"

// OverloadedError is the whole error of an overload refusal.
const OverloadedError = OverloadedPrefix + ": too many tickets are being created, retry later"

// StartingError is the whole error of every answer but the probes of a
// frontend still starting (connecting to NATS, binding: 503, Retry-After:
// 1): a load balancer sends it nothing, since it is not ready yet, but a
// client that reaches it directly is told to come back.
const StartingError = "starting: not ready yet, retry later"

// Overloaded reports whether b refuses a creation for overload.
func (b ErrorBody) Overloaded() bool { return strings.HasPrefix(b.Error, OverloadedPrefix) }

// CreatedNothing reports whether a creation answered status with body b
// certainly made no ticket: refused for overload, by a frontend still
// starting, by its rate limit, or for a full region, each before any
// write. A client sends its next attempt with HeaderRepeat unless every
// earlier one was so refused. (A refusal it does not send again, a 400
// say, needs no rule.)
func CreatedNothing(status int, b ErrorBody) bool {
	switch status {
	case http.StatusTooManyRequests:
		return true
	case http.StatusServiceUnavailable:
		return b.Overloaded() || b.Error == StartingError || b.RegionFull()
	}
	return false
}

// RegionFullText is in the error of a creation refused because its region
// has no free game-server rooms (RegionFullError; SuggestRegion names one
// with room, when there is one). "Region full" in the clients' names
// (RegionFull, pkg/client.ErrRegionFull) is this: out of capacity.
const RegionFullText = "out of game-server capacity"

// RegionFull reports whether b refuses a creation for a full region.
func (b ErrorBody) RegionFull() bool {
	return b.SuggestRegion != "" || strings.Contains(b.Error, RegionFullText)
}

// Paths of the API.
const (
	PathTickets  = "/v1/tickets"
	PathWSEvents = "/ws/events"
	// PathWS is the demo's WebSocket: one text message, the game server's
	// URL, then a close.
	PathWS = "/ws"
)

// TicketPath is the path of one ticket (GET, DELETE).
func TicketPath(id string) string { return PathTickets + "/" + id }

// EventsPath is the path of one ticket's Server-Sent Events.
func EventsPath(id string) string { return TicketPath(id) + "/events" }

// Headers and query parameters the API reads or writes.
const (
	HeaderAuthorization  = "Authorization"
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderRepeat ("1") marks a keyed POST that repeats one whose
	// ticket may exist: an earlier attempt with the same Idempotency-Key
	// had no answer, or one that does not say nothing was made
	// (CreatedNothing). Past its limit a frontend refuses creations
	// before it reads their key, but answers such a repeat from the
	// ticket its earlier attempt made (and refuses it for overload if
	// none was, or says why its shard takes none: drained, a full
	// region): a client whose first POST was cut short is not kept out
	// of a ticket it holds, perhaps matched already, until it gives up.
	// A client that says so falsely gains nothing: it costs the frontend
	// its token's check and a look-up (and for a ticket of its own still
	// waiting, what any repeat costs: published again), within the few
	// repeats it serves at once, and is refused as it would have been.
	HeaderRepeat        = "Quickmatch-Repeat"
	HeaderCorrelationID = "X-Correlation-Id"
	HeaderLastEventID   = "Last-Event-ID"
	HeaderRetryAfter    = "Retry-After"
	// HeaderTraceParent is the W3C trace context a client may send: the
	// frontend's create span is its child. The name is the bus's.
	HeaderTraceParent = events.HeaderTraceParent
	// QueryAccessToken carries the bearer token for clients that cannot
	// set headers (EventSource, browsers' WebSocket).
	QueryAccessToken = "access_token"
)

// EventStatus is the event name of every Server-Sent Event of a ticket;
// its id is the status's rank (events.Status.Rank): EventIDQueued,
// EventIDMatched, EventIDTerminal. A queued event may come again under id
// 1 when its expected wait moves.
const EventStatus = "status"

// Event ids of the Server-Sent Events, the values Last-Event-ID may take.
const (
	EventIDQueued   = 1
	EventIDMatched  = 2
	EventIDTerminal = 3
)

// cancelType is the type of CancelMessage.
const cancelType = "cancel"

// CancelMessage is what a /ws/events client sends to cancel its ticket.
const CancelMessage = `{"type":"` + cancelType + `"}`

// IsCancel reports whether a message a /ws/events client sent asks to
// cancel its ticket (CancelMessage, in any JSON spelling).
func IsCancel(msg []byte) bool {
	var m struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(msg, &m) == nil && m.Type == cancelType
}

// Close codes of a /ws or /ws/events connection whose ticket ended
// otherwise than assigned (1000, a normal closure), or was refused after
// the upgrade: websocket 1013 (try again later), its reason starting with
// RetryAfterReason's form.
const (
	CloseExpired   = 4001
	CloseFailed    = 4002
	CloseCancelled = 4003
	CloseInvalid   = 4400
	// CloseFollowing is what a /ws/events client closes with when it
	// goes on following its ticket elsewhere (its event stream): the
	// ticket is kept, as for a connection cut. Any other close is a
	// client that leaves, and its ticket is cancelled.
	CloseFollowing = 4000
)

// LostReason starts the reason of a ticket cancelled because its
// /ws/events client's connection was cut and no client followed the
// ticket again within the frontend's grace (-lost-grace): the player was
// taken for gone. A client that finds its ticket so may queue again.
const LostReason = "client lost: "

// LostCancelReason is the reason such a ticket is cancelled with, asked
// about every grace.
func LostCancelReason(grace time.Duration) string {
	return LostReason + "its WebSocket was cut and no client followed the ticket (asked every " + grace.String() + ")"
}

// RetryAfterReason is the start of a 1013 close reason that says how long
// to wait, as a POST's Retry-After does: "retry after 30s: ..."
// (RetryAfterCloseReason).
const RetryAfterReason = "retry after "
