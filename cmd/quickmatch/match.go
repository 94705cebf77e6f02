package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// matchInfo is what is stored about one match.
type matchInfo struct {
	MatchID string `json:"match_id"`
	// Match is the match as its commit stored it: its record in the
	// matches bucket, or, with none (a matcher writes a record only for
	// some matches), the match the claim of the ticket asked for carries
	// (events.HeaderMatch). From says which: "record", or "claim of
	// ticket <id>".
	Match *events.Match `json:"match,omitempty"`
	From  string        `json:"from,omitempty"`
	// Decision is its one decision (published, undone; "" for none yet),
	// Sent that its matched results went out.
	Decision events.Decision `json:"decision,omitempty"`
	Sent     bool            `json:"sent,omitempty"`
	// Claims are the owners of its tickets' claims now: the match's own
	// while it stands, given back ("") after a requeue.
	Claims map[string]string `json:"claims,omitempty"`
	// Allocation is its record in the allocations bucket as the
	// allocator wrote it (services/allocator/internal/allocator:
	// record), whole, whatever fields a newer allocator adds.
	Allocation json.RawMessage `json:"allocation,omitempty"`
}

// allocationView is the part of an allocation record a table shows.
type allocationView struct {
	Server *struct {
		Name    string `json:"name"`
		Address string `json:"address"`
		Port    int    `json:"port"`
		Cluster string `json:"cluster"`
	} `json:"server"`
	Pending int64  `json:"pending"`
	Failed  bool   `json:"failed"`
	Requeue string `json:"requeue"`
}

func matchCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, s *session, args []string) error {
		info, err := s.lookupMatch(ctx, args[0])
		if err != nil {
			return err
		}
		if s.json {
			return printJSON(s.out, info)
		}
		return writeMatch(s.out, info)
	}
}

// errUnknownMatch: nothing stored names the match.
var errUnknownMatch = errors.New("no record, decision or allocation stored, and no ticket of that id is claimed by a match (records are kept for 1.5 to 2 hours)")

// lookupMatch gathers what is stored about the match id names: a match
// id, or a ticket id, whose claim names its match and carries it. Only a
// ticket's claim can lead to a match without a record: nothing finds the
// claims of a match by its id.
func (s *session) lookupMatch(ctx context.Context, id string) (*matchInfo, error) {
	info, err := s.matchByID(ctx, id, "", nil)
	if !errors.Is(err, errUnknownMatch) {
		return info, err
	}
	c, _, cerr := s.claim(ctx, id)
	if cerr != nil {
		return nil, cerr
	}
	matchID, isMatch := events.OwnerMatchID(c.Owner)
	if !isMatch {
		return nil, err
	}
	carried, cerr := carriedMatch(id, c)
	if cerr != nil {
		return nil, cerr
	}
	return s.matchByID(ctx, matchID, id, carried)
}

// matchByID gathers what is stored about match id; carried, if set, is
// the match the claim of ticket carries, shown if it has no record.
func (s *session) matchByID(ctx context.Context, id, ticket string, carried *events.Match) (*matchInfo, error) {
	info := &matchInfo{MatchID: id}
	b, found, err := s.kvGet(ctx, s.subj.MatchesBucket(), id)
	if err != nil {
		return nil, err
	}
	if found {
		m, err := decodeMatchRecord(b)
		if err != nil {
			return nil, fmt.Errorf("record of match %s: %w", id, err)
		}
		info.Match, info.From = &m, "record"
	} else if carried != nil {
		info.Match, info.From = carried, "claim of ticket "+ticket
	}
	decisions, err := events.NewDecisions(ctx, s.js, s.subj)
	if err != nil {
		return nil, err
	}
	if info.Decision, err = decisions.Decided(ctx, id); err != nil {
		return nil, err
	}
	if info.Sent, err = decisions.Sent(ctx, id); err != nil {
		return nil, err
	}
	if b, found, err = s.kvGet(ctx, s.subj.AllocationsBucket(), id); err != nil {
		return nil, err
	}
	if found {
		info.Allocation = b
	}
	if info.Match == nil && info.Allocation == nil && info.Decision == "" {
		return nil, fmt.Errorf("match %s: %w", id, errUnknownMatch)
	}
	if info.Match != nil {
		info.Claims = map[string]string{}
		for _, t := range info.Match.Tickets {
			if info.Claims[t.TicketID], err = s.owner(ctx, t.TicketID); err != nil {
				return nil, err
			}
		}
	}
	return info, nil
}

func writeMatch(w io.Writer, info *matchInfo) error {
	lines := [][2]string{{"decision", string(info.Decision)}, {"results sent", fmt.Sprint(info.Sent)}}
	if m := info.Match; m != nil {
		lines = append(lines, [2]string{"shard", events.Shard{Region: m.Region, Tier: m.Tier}.String()},
			[2]string{"mode", m.Mode}, [2]string{"formed", at(m.CreatedAt)})
		if m.Backfill != nil {
			lines = append(lines, [2]string{"fills room", fmt.Sprintf("%+v", *m.Backfill)})
		}
		lines = append(lines, [2]string{"read from", info.From})
	} else {
		lines = append(lines, [2]string{"record", "none stored: the match travels in its tickets' claims (quickmatch match <ticket id> or quickmatch ticket <ticket id> shows it while it holds them), or aged out"})
	}
	lines = append(lines, [2]string{"allocation", allocationText(info.Allocation)})
	section(w, "match "+info.MatchID, lines...)
	if info.Match == nil {
		return nil
	}
	t := newTable(w, "TICKET", "TEAM", "PLAYERS", "SKILL", "WAITED", "CLAIM")
	for _, mt := range info.Match.Tickets {
		waited := ""
		if !mt.CreatedAt.IsZero() {
			waited = info.Match.CreatedAt.Sub(mt.CreatedAt).Round(time.Millisecond).String()
		}
		t.row(mt.TicketID, fmt.Sprint(mt.Team), strings.Join(mt.Players, ","), fmt.Sprint(mt.Skill), waited, info.Claims[mt.TicketID])
	}
	return t.flush()
}

// allocationText is an allocation record in one line.
func allocationText(raw json.RawMessage) string {
	if raw == nil {
		return "none"
	}
	var a allocationView
	if err := json.Unmarshal(raw, &a); err != nil {
		return "unreadable: " + string(raw)
	}
	var parts []string
	if a.Server != nil {
		parts = append(parts, fmt.Sprintf("server %s at %s:%d", a.Server.Name, a.Server.Address, a.Server.Port))
		if a.Server.Cluster != "" {
			parts = append(parts, "cluster "+a.Server.Cluster)
		}
	}
	if a.Pending > 0 && a.Server == nil {
		parts = append(parts, "pending since "+at(time.UnixMilli(a.Pending)))
	}
	if a.Failed {
		parts = append(parts, "failed")
	}
	if a.Requeue != "" {
		parts = append(parts, "tickets "+a.Requeue)
	}
	if len(parts) == 0 {
		return string(raw)
	}
	return strings.Join(parts, ", ")
}

// decodeMatchRecord reads a match record as the matchers read it back
// (matcher/recover.go): plain JSON. A record is stored before the match
// is published and without the schema version a publish sets, so
// events.DecodeMatch, the allocation request's decoder, refuses it.
func decodeMatchRecord(b []byte) (events.Match, error) {
	var m events.Match
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	if m.MatchID == "" || len(m.Tickets) == 0 {
		return m, fmt.Errorf("not a match record: %.80s", b)
	}
	return m, nil
}
