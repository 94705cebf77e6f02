package events

import (
	"context"
	"encoding/json"
)

// Cancel tells matchers that a ticket was cancelled, so they drop it from
// their pool at once. It is a hint published on core NATS: the claim made
// before it is what guarantees that a cancelled ticket is never matched.
type Cancel struct {
	SchemaVersion int    `json:"schema_version"`
	TicketID      string `json:"ticket_id"`
	Region        string `json:"region"`
	Tier          string `json:"tier"`
	Mode          string `json:"mode"`
}

// DecodeCancel reads a cancel notice strictly.
func DecodeCancel(data []byte) (Cancel, error) {
	return decodeChecked("cancel", data, DecodeStrict, func(c *Cancel, fe *FieldErrors) {
		fe.Token("ticket_id", c.TicketID)
	})
}

// CancelNotice asks the shard region.tier to drop a ticket that was just
// decided (cancelled, expired, superseded). It is a hint on core NATS,
// not stored: the ticket's claim is what keeps it out of every match, so a
// lost notice only leaves the ticket in a pool until a commit or an expiry
// meets its claim.
func (p *Publisher) CancelNotice(ctx context.Context, region, tier, ticketID, mode string) error {
	msg, err := NewMsg(ctx, p.subj.Cancel(region, tier), "", Cancel{
		SchemaVersion: SchemaVersion, TicketID: ticketID, Region: region, Tier: tier, Mode: mode,
	})
	if err != nil {
		return err
	}
	return p.js.Conn().PublishMsg(msg)
}

// MatchedNotice tells matchers that a ticket was matched (its match is
// published), so that the copies of it waiting in other shards' pools
// (visitors, and its home shard's own message when a visitor was matched)
// leave them at once instead of waiting, counted, until a commit or an
// expiry meets the ticket's claim. It travels on the cancels subject of
// the shard that formed the match, which every matcher follows (MatchID
// tells it from a [Cancel]; see DecodeNotice). It is a hint: a matcher
// drops its copy only once it reads the ticket's claim held by MatchID, so
// a ticket queued again after that match (its claim given back) is kept,
// and a lost notice only leaves a copy until it meets the claim.
//
// HomeTier and HomeRegion name the ticket's own shard, so that a matcher
// hands the notice only to the shards that can hold a copy of it: its
// tier's in every region, and the neighbouring tiers' of its region. An
// empty HomeRegion (unknown: a recovery does not know where a visitor
// came from) stands for every region; an empty HomeTier for every shard.
type MatchedNotice struct {
	SchemaVersion int    `json:"schema_version"`
	TicketID      string `json:"ticket_id"`
	MatchID       string `json:"match_id"`
	HomeRegion    string `json:"home_region,omitempty"`
	HomeTier      string `json:"home_tier,omitempty"`
}

// DecodeNotice reads what a cancels subject carries, strictly: a matched
// notice (matched not nil) if it names a match_id, a cancel notice
// otherwise.
func DecodeNotice(data []byte) (c Cancel, matched *MatchedNotice, err error) {
	var probe struct {
		MatchID *string `json:"match_id"`
	}
	if json.Unmarshal(data, &probe) != nil || probe.MatchID == nil {
		c, err = DecodeCancel(data)
		return c, nil, err
	}
	m, err := decodeChecked("matched notice", data, DecodeStrict, func(m *MatchedNotice, fe *FieldErrors) {
		fe.Token("ticket_id", m.TicketID)
		fe.Token("match_id", m.MatchID)
		if m.HomeRegion != "" {
			fe.Token("home_region", m.HomeRegion)
		}
		if m.HomeTier != "" {
			fe.Token("home_tier", m.HomeTier)
		}
	})
	if err != nil {
		return Cancel{}, nil, err
	}
	return Cancel{}, &m, nil
}

// MatchedNotice publishes n (its schema version set here) on the cancels
// subject of shard region.tier, the shard that formed its match. A hint on
// core NATS, not stored.
func (p *Publisher) MatchedNotice(ctx context.Context, region, tier string, n MatchedNotice) error {
	n.SchemaVersion = SchemaVersion
	msg, err := NewMsg(ctx, p.subj.Cancel(region, tier), "", n)
	if err != nil {
		return err
	}
	return p.js.Conn().PublishMsg(msg)
}
