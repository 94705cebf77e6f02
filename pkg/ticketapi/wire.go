package ticketapi

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The texts below are built and parsed here only: the frontend builds
// them, the clients parse them, and a test makes the round trip.

// RegionFullError is the error of a creation refused because region is
// out of game-server capacity; suggest, if not "", has room.
func RegionFullError(region, suggest string) string {
	msg := "region " + region + " is " + RegionFullText
	if suggest != "" {
		msg += suggestMid + suggest + suggestEnd
	}
	return msg
}

// suggestMid and suggestEnd frame the region RegionFullError suggests.
const (
	suggestMid = "; region "
	suggestEnd = " has room"
)

// ParseSuggestedRegion is the region a RegionFullError suggests, "" for
// any other text. A WebSocket refused after its upgrade gets the error as
// its close reason, with no body to carry ErrorBody.SuggestRegion.
func ParseSuggestedRegion(text string) string {
	if !strings.Contains(text, RegionFullText) {
		return ""
	}
	_, rest, ok := strings.Cut(text, RegionFullText+suggestMid)
	region, ok2 := strings.CutSuffix(rest, suggestEnd)
	if !ok || !ok2 || region == "" || strings.Contains(region, " ") {
		return ""
	}
	return region
}

// drainedMid separates a drained shard from the operator's reason.
const drainedMid = " is drained: "

// DrainedReason is the error of a creation refused because an operator
// drained its shard: "shard eu.gold is drained: <reason>". A WebSocket
// refused after its upgrade gets it as its close reason, with no body to
// carry DrainedBody: ParseDrainedReason gives it back.
func DrainedReason(shard, reason string) string {
	return "shard " + shard + drainedMid + reason
}

// ParseDrainedReason reads a DrainedReason; ok is false for any other
// text. A shard holds no space, so the first separator is the one.
func ParseDrainedReason(text string) (d DrainedBody, ok bool) {
	rest, ok := strings.CutPrefix(text, "shard ")
	if !ok {
		return d, false
	}
	d.Shard, d.Reason, ok = strings.Cut(rest, drainedMid)
	if !ok || d.Shard == "" || strings.Contains(d.Shard, " ") {
		return DrainedBody{}, false
	}
	return d, true
}

// RestartReason is the reason of the 1012 close (service restart) a
// /ws/events client gets from a frontend that shuts down: its ticket is
// kept, to be followed on its event stream (EventsPath), which any
// frontend serves.
func RestartReason(ticketID string) string {
	return "frontend restarting; ticket kept: follow " + EventsPath(ticketID)
}

// maxRetryDigits bounds the seconds of a 1013 close reason: 6 digits (11
// days) is more than any server asks, and no parse overflows.
const maxRetryDigits = 6

// RetryAfterCloseReason is the reason of a 1013 close (try again later)
// that says how long to wait, as a POST's Retry-After does, in whole
// seconds: "retry after 30s: <text>". A WebSocket client cannot read the
// headers of an answer after the upgrade, so the wait travels here.
func RetryAfterCloseReason(d time.Duration, text string) string {
	return RetryAfterReason + strconv.Itoa(int(d/time.Second)) + "s: " + text
}

// ParseRetryAfterCloseReason reads a RetryAfterCloseReason: the wait and
// the text after it. ok is false for a reason without a wait (text is
// then the whole reason) or with more than six digits of one.
func ParseRetryAfterCloseReason(reason string) (d time.Duration, text string, ok bool) {
	rest, found := strings.CutPrefix(reason, RetryAfterReason)
	if !found {
		return 0, reason, false
	}
	secs, text, found := strings.Cut(rest, "s: ")
	if !found || secs == "" || len(secs) > maxRetryDigits || strings.Trim(secs, "0123456789") != "" {
		return 0, reason, false
	}
	n, _ := strconv.Atoi(secs) // digits only, at most six
	return time.Duration(n) * time.Second, text, true
}

// Query parameters of /ws and /ws/events: the part of a Request they can
// carry (a party, latencies and a ticket id travel only in a POST).
const (
	QueryRegion     = "region"
	QueryMode       = "mode"
	QueryPlayerID   = "player_id"
	QuerySkill      = "skill"
	QueryAttributes = "attributes"
)

// ErrNotInQuery: a request with a ticket id, a party or latencies, which
// a WebSocket's query does not carry.
var ErrNotInQuery = errors.New("a ticket id, party or latencies travel only in a POST")

// WSQuery is r as the query of /ws or /ws/events (RequestFromQuery reads
// it back): region, mode, player_id, skill, and attributes as the JSON
// object a POST carries. Empty fields are left out.
func (r Request) WSQuery() (url.Values, error) {
	if r.TicketID != "" || len(r.Party) > 0 || len(r.LatenciesMS) > 0 {
		return nil, ErrNotInQuery
	}
	q := url.Values{}
	for k, v := range map[string]string{QueryRegion: r.Region, QueryMode: r.Mode, QueryPlayerID: r.PlayerID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if r.Skill != nil {
		q.Set(QuerySkill, strconv.Itoa(*r.Skill))
	}
	if r.Attributes != nil {
		a, err := json.Marshal(r.Attributes)
		if err != nil {
			return nil, err
		}
		q.Set(QueryAttributes, string(a))
	}
	return q, nil
}

// RequestFromQuery reads the request of a /ws or /ws/events query
// (Request.WSQuery); what it leaves out (a skill, a region) is the
// server's to default. A skill that is no integer, or attributes that
// are not the object a POST would carry, are an *events.ValidationError
// naming the field as a POST's body would. Other parameters are not
// read here (access_token is the identity's).
func RequestFromQuery(q url.Values) (Request, error) {
	r := Request{PlayerID: q.Get(QueryPlayerID), Region: q.Get(QueryRegion), Mode: q.Get(QueryMode)}
	if s := q.Get(QuerySkill); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return r, &events.ValidationError{Kind: "request", Fields: []events.FieldError{{Field: QuerySkill, Reason: "must be an integer"}}}
		}
		r.Skill = &n
	}
	if s := q.Get(QueryAttributes); s != "" {
		var attrs events.Attributes
		if err := events.DecodeStrict("request", []byte(s), &attrs); err != nil {
			return r, underField(QueryAttributes, err)
		}
		r.Attributes = &attrs
	}
	return r, nil
}

// underField names the fields of a validation error of a value that is
// field's, as a POST's body would have named them.
func underField(field string, err error) error {
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &events.ValidationError{Kind: ve.Kind, Fields: make([]events.FieldError, len(ve.Fields))}
	for i, f := range ve.Fields {
		if f.Field != "" {
			f.Field = field + "." + f.Field
		} else {
			f.Field = field
		}
		out.Fields[i] = f
	}
	return out
}
