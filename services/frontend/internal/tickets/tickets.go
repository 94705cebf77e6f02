// Package tickets is the frontend's ticket service: it turns a player's
// request into a ticket on JetStream and answers where that ticket stands.
//
// State lives in JetStream, not in the process, so any frontend instance
// answers for any ticket: the ticket record (who, which shard) is in the
// tickets key-value bucket, and the outcome is the player's latest result
// in the RESULTS stream.
package tickets

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Errors callers branch on.
var (
	ErrNotFound         = errors.New("ticket not found")
	ErrIdempotencyReuse = errors.New("idempotency key was used for a different request")
)

// Request is what a client asks for.
type Request struct {
	TicketID    string         `json:"ticket_id,omitempty"`
	PlayerID    string         `json:"player_id,omitempty"`
	Party       []string       `json:"party,omitempty"`
	Mode        string         `json:"mode,omitempty"`
	Skill       *int           `json:"skill"`
	Region      string         `json:"region"`
	LatenciesMS map[string]int `json:"latencies_ms,omitempty"`
}

// Record is what the tickets bucket keeps per ticket.
type Record struct {
	Ticket      events.Ticket `json:"ticket"`
	Region      string        `json:"region"`
	Tier        string        `json:"tier"`
	RequestHash string        `json:"request_hash"`
}

// View is a ticket as a client sees it.
type View struct {
	TicketID   string             `json:"ticket_id"`
	Status     events.Status      `json:"status"`
	Region     string             `json:"region,omitempty"`
	Tier       string             `json:"tier,omitempty"`
	Mode       string             `json:"mode,omitempty"`
	MatchID    string             `json:"match_id,omitempty"`
	Reason     string             `json:"reason,omitempty"`
	Assignment *events.Assignment `json:"assignment,omitempty"`
}

// Service creates tickets and reports on them.
type Service struct {
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	results jetstream.Stream
	subj    events.Subjects
	pub     *events.Publisher
	regions events.Regions
	tiers   events.Tiers
	now     func() time.Time
}

// New binds to the provisioned bucket and stream.
func New(ctx context.Context, js jetstream.JetStream, subj events.Subjects, regions events.Regions, tiers events.Tiers) (*Service, error) {
	kv, err := js.KeyValue(ctx, subj.TicketsBucket())
	if err != nil {
		return nil, fmt.Errorf("tickets bucket: %w", err)
	}
	results, err := js.Stream(ctx, subj.ResultsStream())
	if err != nil {
		return nil, fmt.Errorf("results stream: %w", err)
	}
	return &Service{js: js, kv: kv, results: results, subj: subj, pub: events.NewPublisher(js, subj), regions: regions, tiers: tiers, now: time.Now}, nil
}

// Create validates req, stores the ticket record and publishes the ticket.
// With an idempotency key (or a client ticket id) a repeated request gets
// the same ticket back; the publish is repeated too, which JetStream's
// duplicate window stores once, so a request whose first attempt died
// between the record and the publish still gets its ticket queued.
func (s *Service) Create(ctx context.Context, req Request, idempotencyKey string) (View, error) {
	t, region, tier, err := s.build(req)
	if err != nil {
		return View{}, err
	}
	hash := requestHash(req)
	switch {
	case t.TicketID != "":
	case idempotencyKey != "":
		t.TicketID = "i" + hashHex(idempotencyKey)
	default:
		t.TicketID = newTicketID()
	}
	rec := Record{Ticket: t, Region: region, Tier: tier, RequestHash: hash}
	if idempotencyKey != "" || req.TicketID != "" {
		if old, err := s.record(ctx, t.TicketID); err == nil {
			if old.RequestHash != hash {
				return View{}, ErrIdempotencyReuse
			}
			rec = old
		} else if !errors.Is(err, ErrNotFound) {
			return View{}, err
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return View{}, fmt.Errorf("encode ticket record: %w", err)
	}
	if _, err := s.kv.Put(ctx, rec.Ticket.TicketID, data); err != nil {
		return View{}, fmt.Errorf("store ticket %s: %w", rec.Ticket.TicketID, err)
	}
	if _, err := s.pub.Ticket(ctx, rec.Region, rec.Tier, rec.Ticket); err != nil {
		return View{}, fmt.Errorf("queue ticket %s: %w", rec.Ticket.TicketID, err)
	}
	return View{TicketID: rec.Ticket.TicketID, Status: events.StatusQueued, Region: rec.Region, Tier: rec.Tier, Mode: rec.Ticket.Mode}, nil
}

// build turns a request into a ticket by the contract's rules.
func (s *Service) build(req Request) (events.Ticket, string, string, error) {
	t := events.Ticket{
		SchemaVersion: events.SchemaVersion,
		TicketID:      req.TicketID,
		PlayerID:      req.PlayerID,
		Party:         req.Party,
		Mode:          req.Mode,
		LatenciesMS:   req.LatenciesMS,
		CreatedAt:     s.now().UTC(),
	}
	if t.Mode == "" {
		t.Mode = events.DefaultMode
	}
	var fields []events.FieldError
	if req.Skill == nil {
		fields = append(fields, events.FieldError{Field: "skill", Reason: "required"})
	} else {
		t.Skill = *req.Skill
	}
	var ve *events.ValidationError
	if err := t.Validate(); errors.As(err, &ve) {
		for _, f := range ve.Fields {
			if f.Field != "skill" || req.Skill != nil {
				fields = append(fields, f)
			}
		}
	}
	switch {
	case req.Region == "":
		fields = append(fields, events.FieldError{Field: "region", Reason: "required"})
	case !slices.Contains(s.regions, req.Region):
		fields = append(fields, events.FieldError{Field: "region", Reason: fmt.Sprintf("unknown region %q, want one of %s", req.Region, s.regions)})
	}
	// The tier follows from the skill, so the subject always fits the ticket.
	tier, _ := s.tiers.For(t.Skill)
	if len(fields) > 0 {
		return events.Ticket{}, "", "", &events.ValidationError{Kind: "ticket", Fields: fields}
	}
	return t, req.Region, tier, nil
}

// Get reports where a ticket stands.
func (s *Service) Get(ctx context.Context, ticketID string) (View, error) {
	rec, err := s.record(ctx, ticketID)
	if err != nil {
		return View{}, err
	}
	v := View{TicketID: ticketID, Status: events.StatusQueued, Region: rec.Region, Tier: rec.Tier, Mode: rec.Ticket.Mode}
	players := rec.Ticket.Players()
	raw, err := s.results.GetLastMsgForSubject(ctx, s.subj.Result(players[0]))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return v, nil
	}
	if err != nil {
		return View{}, fmt.Errorf("result of ticket %s: %w", ticketID, err)
	}
	r, err := events.DecodeResult(raw.Data)
	if err != nil || r.TicketID != ticketID {
		// Not this ticket's (an older or newer ticket of the player), or
		// unreadable: the ticket has no outcome yet.
		return v, nil
	}
	v.Status, v.MatchID, v.Reason, v.Assignment = r.Status, r.MatchID, r.Reason, r.Assignment
	return v, nil
}

func (s *Service) record(ctx context.Context, ticketID string) (Record, error) {
	entry, err := s.kv.Get(ctx, ticketID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("ticket %s: %w", ticketID, err)
	}
	var rec Record
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return Record{}, fmt.Errorf("ticket %s record: %w", ticketID, err)
	}
	return rec, nil
}

func requestHash(req Request) string {
	b, _ := json.Marshal(req) // a Request always encodes
	return hashHex(string(b))
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:12])
}

func newTicketID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "r" + hex.EncodeToString(b[:])
}
