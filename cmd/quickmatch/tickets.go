package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// ticketInfo is what is stored about one ticket, gathered from every
// place that keeps a part of it.
type ticketInfo struct {
	TicketID string        `json:"ticket_id"`
	Status   events.Status `json:"status"`
	// Record is the frontend's (tickets bucket), for a ticket taken over
	// HTTP.
	Record *ticketRecord `json:"record,omitempty"`
	// Players, Shard and Mode come from the record, else from the players
	// bucket (the id's binding, a player's live ticket), else from Match.
	Players []string `json:"players,omitempty"`
	Shard   string   `json:"shard,omitempty"`
	Mode    string   `json:"mode,omitempty"`
	// Claim is the owner of its claim ("" while undecided); Told, that its
	// players were told that outcome (not kept for a match's).
	Claim string `json:"claim"`
	Told  bool   `json:"told"`
	// Match is the match its claim carries (events.HeaderMatch), when the
	// claim is a match's: a matcher stores no other record of most
	// matches, so this is where the ticket's match is read.
	Match *events.Match `json:"match,omitempty"`
	// LiveFor are the players whose live ticket it is.
	LiveFor []string `json:"live_for,omitempty"`
	// Results are the results its players got for it, oldest first, join
	// tokens redacted.
	Results []events.Result `json:"results"`
	// live is the players bucket's entry of it, when LiveFor is not empty.
	live *events.LiveTicket
}

// errUnknownTicket: nothing stored names the ticket.
var errUnknownTicket = fmt.Errorf("nothing stored names it (no frontend record, no players bound to its id, no claim): a ticket published on NATS is known once its shard's owner took it in")

// lookupTicket gathers what is stored about ticketID.
func (s *session) lookupTicket(ctx context.Context, ticketID string) (*ticketInfo, error) {
	info := &ticketInfo{TicketID: ticketID, Results: []events.Result{}}
	var err error
	if info.Record, err = s.record(ctx, ticketID); err != nil {
		return nil, err
	}
	if info.Record != nil {
		info.Players = info.Record.Ticket.Players()
		info.Shard = events.Shard{Region: info.Record.Region, Tier: info.Record.Tier}.String()
		info.Mode = info.Record.Ticket.Mode
	} else if info.Players, err = s.boundPlayers(ctx, ticketID); err != nil {
		return nil, err
	}
	c, told, err := s.claim(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	info.Claim, info.Told = c.Owner, told
	if info.Match, err = carriedMatch(ticketID, c); err != nil {
		return nil, err
	}
	mt := info.matchTicket()
	if info.Players == nil && mt != nil {
		info.Players = mt.Players
	}
	if info.Players == nil && info.Claim == "" {
		return nil, fmt.Errorf("ticket %s: %w", ticketID, errUnknownTicket)
	}
	for _, p := range info.Players {
		lt, err := s.live(ctx, p)
		if err != nil {
			return nil, err
		}
		if lt != nil && lt.TicketID == ticketID {
			info.LiveFor, info.live = append(info.LiveFor, p), lt
			if info.Shard == "" {
				info.Shard, info.Mode = events.Shard{Region: lt.Region, Tier: lt.Tier}.String(), lt.Mode
			}
		}
		rs, err := s.results(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.TicketID == ticketID {
				info.Results = append(info.Results, redact(r))
			}
		}
	}
	if info.Shard == "" && mt != nil {
		m := info.Match
		info.Shard, info.Mode = events.Shard{Region: m.Region, Tier: cmp.Or(mt.Tier, m.Tier)}.String(), m.Mode
	}
	slices.SortStableFunc(info.Results, func(a, b events.Result) int { return a.At.Compare(b.At) })
	info.Status = standing(info.Results, info.Claim)
	return info, nil
}

// matchTicket is the ticket in the match its claim carries, nil if none.
func (info *ticketInfo) matchTicket() *events.MatchTicket {
	if info.Match == nil {
		return nil
	}
	i := slices.IndexFunc(info.Match.Tickets, func(mt events.MatchTicket) bool { return mt.TicketID == info.TicketID })
	if i < 0 {
		return nil
	}
	return &info.Match.Tickets[i]
}

func ticketCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, s *session, args []string) error {
		info, err := s.lookupTicket(ctx, args[0])
		if err != nil {
			return err
		}
		if s.json {
			return printJSON(s.out, info)
		}
		return writeTicket(s.out, info)
	}
}

// writeTicket is a ticket's table form.
func writeTicket(w io.Writer, info *ticketInfo) error {
	created := ""
	if info.Record != nil {
		created = at(info.Record.Ticket.CreatedAt)
	} else if info.live != nil {
		created = at(info.live.CreatedAt)
	}
	source := "NATS (no frontend record)"
	if info.Record != nil {
		source = "HTTP (frontend record)"
	}
	told := "" // a match's results are its own: no told mark
	if _, isMatch := events.OwnerMatchID(info.Claim); info.Claim != "" && !isMatch {
		told = fmt.Sprint(info.Told)
	}
	lines := [][2]string{
		{"status", string(info.Status)},
		{"players", strings.Join(info.Players, ", ")},
		{"shard", info.Shard},
		{"mode", info.Mode},
		{"created", created},
		{"came by", source},
		{"claim", info.Claim},
		{"outcome told", told},
		{"live for", strings.Join(info.LiveFor, ", ")},
	}
	if m := info.Match; m != nil {
		var others []string
		for _, mt := range m.Tickets {
			if mt.TicketID != info.TicketID {
				others = append(others, fmt.Sprintf("%s (team %d: %s)", mt.TicketID, mt.Team, strings.Join(mt.Players, ",")))
			}
		}
		lines = append(lines, [2]string{"match", m.MatchID + " (" + m.Mode + ", carried by its claim)"},
			[2]string{"match formed", at(m.CreatedAt)}, [2]string{"matched with", strings.Join(others, ", ")})
	}
	section(w, "ticket "+info.TicketID, lines...)
	fmt.Fprintln(w, "results:")
	return writeResults(w, info.Results)
}

// writeResults is a list of results as a table.
func writeResults(w io.Writer, rs []events.Result) error {
	t := newTable(w, "AT", "TICKET", "PLAYER", "STATUS", "MATCH", "SERVER", "REASON")
	for _, r := range rs {
		t.row(at(r.At), r.TicketID, r.PlayerID, string(r.Status), r.MatchID, where(r.Assignment), cut(r.Reason, 80))
	}
	return t.flush()
}

// playerInfo is a player's live ticket and what the RESULTS stream keeps
// of their tickets.
type playerInfo struct {
	PlayerID string             `json:"player_id"`
	Live     *events.LiveTicket `json:"live,omitempty"`
	// Tickets are the player's tickets named by a result or by the live
	// entry, in the order they first appear.
	Tickets []ticketSummary `json:"tickets"`
	// Results are the player's results, oldest first, join tokens
	// redacted.
	Results []events.Result `json:"results"`
}

// ticketSummary is one ticket of a player: where it stands and why.
type ticketSummary struct {
	TicketID string        `json:"ticket_id"`
	Status   events.Status `json:"status"`
	MatchID  string        `json:"match_id,omitempty"`
	Claim    string        `json:"claim,omitempty"`
	Reason   string        `json:"reason,omitempty"`
}

func playerCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, s *session, args []string) error {
		info, err := s.lookupPlayer(ctx, args[0])
		if err != nil {
			return err
		}
		if s.json {
			return printJSON(s.out, info)
		}
		return writePlayer(s.out, info)
	}
}

func (s *session) lookupPlayer(ctx context.Context, player string) (*playerInfo, error) {
	info := &playerInfo{PlayerID: player, Tickets: []ticketSummary{}, Results: []events.Result{}}
	var err error
	if info.Live, err = s.live(ctx, player); err != nil {
		return nil, err
	}
	rs, err := s.results(ctx, player)
	if err != nil {
		return nil, err
	}
	var ids []string
	byTicket := map[string][]events.Result{}
	for _, r := range rs {
		if _, seen := byTicket[r.TicketID]; !seen {
			ids = append(ids, r.TicketID)
		}
		byTicket[r.TicketID] = append(byTicket[r.TicketID], r)
		info.Results = append(info.Results, redact(r))
	}
	if info.Live != nil && byTicket[info.Live.TicketID] == nil {
		ids = append(ids, info.Live.TicketID)
	}
	for _, id := range ids {
		owner, err := s.playersClaim(ctx, id, player)
		if err != nil {
			return nil, err
		}
		sum := ticketSummary{TicketID: id, Claim: owner, Status: standing(byTicket[id], owner)}
		for _, r := range byTicket[id] {
			sum.MatchID, sum.Reason = cmp.Or(r.MatchID, sum.MatchID), cmp.Or(r.Reason, sum.Reason)
		}
		info.Tickets = append(info.Tickets, sum)
	}
	if info.Live == nil && len(ids) == 0 {
		return nil, fmt.Errorf("player %s: no live ticket and no results kept (RESULTS keeps a player's last 8 for 2 hours)", player)
	}
	return info, nil
}

// playersClaim is the owner of ticketID's claim, or "" when the id is
// bound to other players: a ticket of player's refused because its id was
// theirs (events.ErrTicketIDTaken) was told failed without a claim, and
// the claim is their ticket's.
func (s *session) playersClaim(ctx context.Context, ticketID, player string) (string, error) {
	bound, err := s.boundPlayers(ctx, ticketID)
	if err != nil || bound != nil && !slices.Contains(bound, player) {
		return "", err
	}
	return s.owner(ctx, ticketID)
}

func writePlayer(w io.Writer, info *playerInfo) error {
	live := "none"
	if lt := info.Live; lt != nil {
		live = fmt.Sprintf("%s (%s %s, created %s)", lt.TicketID, events.Shard{Region: lt.Region, Tier: lt.Tier}, lt.Mode, at(lt.CreatedAt))
	}
	section(w, "player "+info.PlayerID, [2]string{"live ticket", live})
	t := newTable(w, "TICKET", "STATUS", "MATCH", "CLAIM", "REASON")
	for _, sum := range info.Tickets {
		t.row(sum.TicketID, string(sum.Status), sum.MatchID, sum.Claim, cut(sum.Reason, 80))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "history:")
	return writeResults(w, info.Results)
}
