// Package tickets is the frontend's ticket service: it turns a player's
// request into a ticket on JetStream, answers where that ticket stands,
// and cancels or expires it.
//
// State lives in JetStream, not in the process, so any frontend instance
// answers for any ticket: the ticket record (who, which shard) is in the
// tickets bucket, the decided outcome in the claims bucket, and what each
// player was told in the RESULTS stream.
//
// Files: tickets.go holds the types and New; create.go turns a request
// into a queued ticket (Create, Authorize), keyed.go one with an
// Idempotency-Key, and queue.go stores and queues it, trying its writes
// again under a cut (finish) and withdrawing it when they fail
// (withdraw.go tries again the withdrawals NATS refused; unstored.go puts
// the record of a ticket matched before its writes went through); late.go
// remembers the tickets whose writes went through late, whose records
// read.go asks the leader for; read.go reads records and outcomes (Get,
// View, Record); end.go cancels and expires (Cancel, Expire).
package tickets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// Errors callers branch on.
var (
	// ErrNotFound: no such ticket, or one the caller may not see (the two
	// are told apart by nobody, so a ticket id reveals nothing).
	ErrNotFound         = errors.New("ticket not found")
	ErrIdempotencyReuse = errors.New("idempotency key was used for a different request")
	ErrAlreadyDecided   = errors.New("ticket already has an outcome")
	// ErrForbidden: a player asked for a ticket of players they are not.
	ErrForbidden = errors.New("a player may queue only for themself")
)

// Request is what a client asks for (the contract's, pkg/ticketapi).
type Request = ticketapi.Request

// Record is what the tickets bucket keeps per ticket. Its owners are the
// ticket's players (Ticket.Players): they, and the server role, may read,
// follow and cancel it.
type Record struct {
	Ticket events.Ticket
	// Shard is the ticket's own shard, the subject it was published on.
	Shard       events.Shard
	RequestHash string
}

// storedRecord is a Record as the tickets bucket stores it: the shard's
// region and tier are fields of their own, as they always were (every
// frontend of a rolling upgrade reads every record).
type storedRecord struct {
	Ticket      events.Ticket `json:"ticket"`
	Region      string        `json:"region"`
	Tier        string        `json:"tier"`
	RequestHash string        `json:"request_hash"`
}

// MarshalJSON encodes the record as stored.
func (r Record) MarshalJSON() ([]byte, error) {
	return json.Marshal(storedRecord{Ticket: r.Ticket, Region: r.Shard.Region, Tier: r.Shard.Tier, RequestHash: r.RequestHash})
}

// UnmarshalJSON decodes a stored record.
func (r *Record) UnmarshalJSON(data []byte) error {
	var s storedRecord
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*r = Record{Ticket: s.Ticket, Shard: events.Shard{Region: s.Region, Tier: s.Tier}, RequestHash: s.RequestHash}
	return nil
}

// live is the ticket as the players bucket keeps it (events.Players).
func (r Record) live() events.LiveTicket {
	return events.LiveTicket{TicketID: r.Ticket.TicketID, Players: r.Ticket.Players(), Region: r.Shard.Region,
		Tier: r.Shard.Tier, Mode: r.Ticket.Mode, CreatedAt: r.Ticket.CreatedAt}
}

// OwnedBy reports whether c may read, follow and cancel the ticket: one of
// its players, or the server role.
func (r Record) OwnedBy(c identity.Caller) bool { return Owns(c, r.Ticket.Players()) }

// Owns reports whether c may read, follow and cancel a ticket of players.
func Owns(c identity.Caller, players []string) bool {
	return c.Server || c.PlayerID != "" && slices.Contains(players, c.PlayerID)
}

// System is the caller the frontend acts as for itself (expiry, a
// WebSocket client that left): the server role.
var System = identity.Caller{Server: true, Subject: "frontend"}

// View is a ticket as a client sees it: the API's wire shape, so its
// shard is spelled out as region and tier (the contract's, pkg/ticketapi).
type View = ticketapi.View

// ViewOf is the view of a record with a result applied.
func ViewOf(rec Record, r *events.Result) View {
	v := View{TicketID: rec.Ticket.TicketID, Status: events.StatusQueued, Region: rec.Shard.Region, Tier: rec.Shard.Tier, Mode: rec.Ticket.Mode}
	if r != nil {
		v.Status, v.MatchID, v.Reason, v.Assignment = r.Status, r.MatchID, r.Reason, r.Assignment
	}
	return v
}

// Tracker follows tickets' results (results.Tracker).
type Tracker interface {
	Track(ctx context.Context, t *events.Ticket, creation *results.Creation) error
	Untrack(ctx context.Context, ticketID string)
	// Heard is the last result heard for a tracked ticket (nil: none).
	Heard(ctx context.Context, ticketID string) *events.Result
	// HeardSuperseding reports whether a tracked one-player ticket was
	// heard superseding an older ticket of its player.
	HeardSuperseding(ctx context.Context, ticketID string) bool
	// ReadOutcomesWith gives its catch-up the service's OutcomeBehind.
	ReadOutcomesWith(results.Outcomes)
}

// Capacity refuses tickets for a region without free rooms (capacity.Watcher).
type Capacity interface {
	Check(region string) error
}

// Config of the service.
type Config struct {
	Regions events.Regions
	Tiers   events.Tiers
	// Rules is the rule set in force, the matchers' own: its modes, their
	// team sizes and its attributes decide which tickets are taken
	// (rules.Set.Check, the check the matchers make). Nil means
	// rules.Default().
	Rules *rules.Current
	// Drains refuses the tickets of a shard an operator drained (the
	// frontend's drain.Watcher, whose error carries the reason); nil:
	// none is.
	Drains ShardCheck
	// Seals seals each ticket taken first before it is queued
	// (events.HeaderTaken), with the matchers' keys: its shard's owner
	// then takes it in without a read. Nil: no ticket is sealed.
	Seals *events.Seals
}

// ShardCheck refuses tickets for a shard that takes none now.
type ShardCheck interface {
	CheckShard(events.Shard) error
}

// Service creates, reports, cancels and expires tickets.
type Service struct {
	cfg Config
	kv  jetstream.KeyValue
	// leader is kv read from its stream's leader: the record of a ticket
	// whose writes went through late (lateWrites) that a direct get did
	// not find is asked for again there (Record).
	leader     jetstream.KeyValue
	lateWrites lateWrites
	results    jetstream.Stream
	// js queues new tickets (storeAndQueue), pub everything else.
	js      jetstream.JetStream
	claims  *events.Claims
	players *events.Players
	// decisions reads whether the match a ticket's claim names is
	// unsent (publishForUnsent).
	decisions *events.Decisions
	subj      events.Subjects
	pub       *events.Publisher
	// tellSuperseded tells the players of a superseded ticket this
	// frontend ended or met (events.Claims.Tell).
	tellSuperseded events.SupersededFunc
	tracker        Tracker
	capacity       Capacity
	log            *slog.Logger
	now            func() time.Time
	// withdrawals are those tried again (withdrawLater).
	withdrawals *withdrawals
	// unstored are answered tickets' records put in the background
	// (putLater), and read from here meanwhile (Record); unqueued counts
	// their messages published in the background (queueLater),
	// claimReads their claims read in the background (tellLater).
	unstored   unstored
	unqueued   atomic.Int32
	claimReads atomic.Int32
}

// RuleSet is the rule set in force: the one Create checks a ticket
// against, so whoever offers modes and attributes to players (the
// find-a-match page) offers its, and follows a reload as Create does.
func (s *Service) RuleSet() *rules.Set { return s.cfg.Rules.Get() }

// Regions are the regions a ticket may name.
func (s *Service) Regions() events.Regions { return s.cfg.Regions }

// New binds to the provisioned buckets and stream.
func New(ctx context.Context, cfg Config, js jetstream.JetStream, subj events.Subjects, tracker Tracker, capacity Capacity, log *slog.Logger) (*Service, error) {
	kv, err := js.KeyValue(ctx, subj.TicketsBucket())
	if err != nil {
		return nil, fmt.Errorf("tickets bucket: %w", err)
	}
	leader, err := events.LeaderGets(js, kv)
	if err != nil {
		return nil, fmt.Errorf("tickets bucket: %w", err)
	}
	results, err := js.Stream(ctx, subj.ResultsStream())
	if err != nil {
		return nil, fmt.Errorf("results stream: %w", err)
	}
	claims, err := events.NewClaims(ctx, js, subj)
	if err != nil {
		return nil, err
	}
	players, err := events.NewPlayers(ctx, js, subj, claims)
	if err != nil {
		return nil, err
	}
	decisions, err := events.NewDecisions(ctx, js, subj)
	if err != nil {
		return nil, err
	}
	if cfg.Rules == nil {
		cfg.Rules = rules.Fixed(rules.Default())
	}
	pub := events.NewPublisher(js, subj)
	s := &Service{
		cfg: cfg, kv: kv, leader: leader, results: results, js: js, claims: claims, players: players, decisions: decisions, subj: subj,
		pub: pub, tracker: tracker, capacity: capacity, log: log, now: time.Now, withdrawals: newWithdrawals(),
	}
	s.tellSuperseded = pub.TellSuperseded(cfg.Regions, func(err error) { s.noticeNotSent(err) })
	if tracker != nil {
		// Where a tracked ticket stands, for the tracker's catch-up, is
		// read as Get reads it: one answer to the question, not two.
		tracker.ReadOutcomesWith(s.OutcomeBehind)
	}
	return s, nil
}

// maxWait is mode's max_wait in the rule set in force, or
// events.TicketMaxAge for a mode it no longer has.
func (s *Service) maxWait(mode string) time.Duration {
	if m, ok := s.cfg.Rules.Get().Mode(mode); ok {
		return time.Duration(m.MaxWait)
	}
	return events.TicketMaxAge
}
