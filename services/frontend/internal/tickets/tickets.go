// Package tickets is the frontend's ticket service: it turns a player's
// request into a ticket on JetStream, answers where that ticket stands,
// and cancels or expires it.
//
// State lives in JetStream, not in the process, so any frontend instance
// answers for any ticket: the ticket record (who, which shard) is in the
// tickets bucket, the decided outcome in the claims bucket, and what each
// player was told in the RESULTS stream.
package tickets

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/results"
)

// Errors callers branch on.
var (
	ErrNotFound         = errors.New("ticket not found")
	ErrIdempotencyReuse = errors.New("idempotency key was used for a different request")
	ErrAlreadyDecided   = errors.New("ticket already has an outcome")
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

// ViewOf is the view of a record with a result applied.
func ViewOf(rec Record, r *events.Result) View {
	v := View{TicketID: rec.Ticket.TicketID, Status: events.StatusQueued, Region: rec.Region, Tier: rec.Tier, Mode: rec.Ticket.Mode}
	if r != nil {
		v.Status, v.MatchID, v.Reason, v.Assignment = r.Status, r.MatchID, r.Reason, r.Assignment
	}
	return v
}

// Tracker follows tickets' results (results.Tracker).
type Tracker interface {
	Track(ctx context.Context, ticketID, player string, created time.Time, origin *results.Origin) error
	Untrack(ctx context.Context, ticketID string)
}

// Admission refuses tickets for a region without capacity (capacity.Watcher).
type Admission interface {
	Admit(region string) error
}

// Config of the service.
type Config struct {
	Regions events.Regions
	Tiers   events.Tiers
	// Modes a ticket may ask for; empty allows any the contract accepts
	// (the matcher dead-letters modes it does not know).
	Modes []string
	// MaxPartySize bounds a party (the largest team of any mode).
	MaxPartySize int
}

// Service creates, reports, cancels and expires tickets.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	results jetstream.Stream
	claims  *events.Claims
	subj    events.Subjects
	pub     *events.Publisher
	tracker Tracker
	admit   Admission
	log     *slog.Logger
	now     func() time.Time
}

// New binds to the provisioned buckets and stream.
func New(ctx context.Context, cfg Config, js jetstream.JetStream, subj events.Subjects, tracker Tracker, admit Admission, log *slog.Logger) (*Service, error) {
	kv, err := js.KeyValue(ctx, subj.TicketsBucket())
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
	if cfg.MaxPartySize <= 0 {
		cfg.MaxPartySize = events.MaxPartySize
	}
	return &Service{
		cfg: cfg, js: js, kv: kv, results: results, claims: claims, subj: subj,
		pub: events.NewPublisher(js, subj), tracker: tracker, admit: admit, log: log, now: time.Now,
	}, nil
}

// Create validates req, stores the ticket record, starts following the
// player's results and then publishes the ticket. With an idempotency key
// (or a client ticket id) a repeated request gets the same ticket back; the
// publish is repeated too, which JetStream's duplicate window stores once,
// so a request whose first attempt died between the record and the publish
// still gets its ticket queued.
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
		if old, err := s.Record(ctx, t.TicketID); err == nil {
			if old.RequestHash != hash {
				return View{}, ErrIdempotencyReuse
			}
			if err := s.republish(ctx, old); err != nil {
				return View{}, err
			}
			return s.Get(ctx, old.Ticket.TicketID)
		} else if !errors.Is(err, ErrNotFound) {
			return View{}, err
		}
	}
	if err := s.admit.Admit(region); err != nil {
		return View{}, err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return View{}, fmt.Errorf("encode ticket record: %w", err)
	}
	// The record is stored while the tracker subscribes: two round trips
	// side by side; the ticket is published once both are done.
	stored := make(chan error, 1)
	go func() {
		_, err := s.kv.Put(ctx, t.TicketID, data)
		stored <- err
	}()
	if err := s.tracker.Track(ctx, t.TicketID, t.Players()[0], t.CreatedAt, &results.Origin{Region: region, Tier: tier, Mode: t.Mode}); err != nil {
		<-stored
		return View{}, err
	}
	if err := <-stored; err != nil {
		s.tracker.Untrack(context.WithoutCancel(ctx), t.TicketID)
		return View{}, fmt.Errorf("store ticket %s: %w", t.TicketID, err)
	}
	if _, err := s.pub.Ticket(ctx, region, tier, t); err != nil {
		s.tracker.Untrack(context.WithoutCancel(ctx), t.TicketID)
		return View{}, fmt.Errorf("queue ticket %s: %w", t.TicketID, err)
	}
	return ViewOf(rec, nil), nil
}

// republish makes sure a repeated request's ticket is queued: unless it has
// an outcome, it is tracked and published again (stored once within the
// duplicate window). Its error is what the repeat should answer.
func (s *Service) republish(ctx context.Context, rec Record) error {
	owner, err := s.claims.Owner(ctx, rec.Ticket.TicketID)
	if err != nil || owner != "" {
		return err
	}
	if err := s.tracker.Track(ctx, rec.Ticket.TicketID, rec.Ticket.Players()[0], rec.Ticket.CreatedAt, nil); err != nil {
		return err
	}
	if _, err := s.pub.Ticket(ctx, rec.Region, rec.Tier, rec.Ticket); err != nil {
		return fmt.Errorf("queue ticket %s: %w", rec.Ticket.TicketID, err)
	}
	return nil
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
	if len(s.cfg.Modes) > 0 && !slices.Contains(s.cfg.Modes, t.Mode) {
		fields = append(fields, events.FieldError{Field: "mode", Reason: fmt.Sprintf("unknown mode %q, want one of %v", t.Mode, s.cfg.Modes)})
	}
	if len(t.Party) > s.cfg.MaxPartySize {
		fields = append(fields, events.FieldError{Field: "party", Reason: fmt.Sprintf("has %d players, at most %d allowed", len(t.Party), s.cfg.MaxPartySize)})
	}
	switch {
	case req.Region == "":
		fields = append(fields, events.FieldError{Field: "region", Reason: "required"})
	case !slices.Contains(s.cfg.Regions, req.Region):
		fields = append(fields, events.FieldError{Field: "region", Reason: fmt.Sprintf("unknown region %q, want one of %s", req.Region, s.cfg.Regions)})
	}
	// The tier follows from the skill, so the subject always fits the ticket.
	tier, _ := s.cfg.Tiers.For(t.Skill)
	if len(fields) > 0 {
		return events.Ticket{}, "", "", &events.ValidationError{Kind: "ticket", Fields: fields}
	}
	return t, req.Region, tier, nil
}

// Get reports where a ticket stands: its players' latest result for it in
// the RESULTS stream.
func (s *Service) Get(ctx context.Context, ticketID string) (View, error) {
	rec, err := s.Record(ctx, ticketID)
	if err != nil {
		return View{}, err
	}
	r, err := s.lastResult(ctx, rec)
	if err != nil {
		return View{}, err
	}
	return ViewOf(rec, r), nil
}

// lastResult is the newest result of the ticket's first player, if it is
// about this ticket.
func (s *Service) lastResult(ctx context.Context, rec Record) (*events.Result, error) {
	raw, err := s.results.GetLastMsgForSubject(ctx, s.subj.Result(rec.Ticket.Players()[0]))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("result of ticket %s: %w", rec.Ticket.TicketID, err)
	}
	r, err := events.DecodeResult(raw.Data)
	if err != nil || r.TicketID != rec.Ticket.TicketID {
		// Unreadable, or another ticket of the player: this ticket has no
		// outcome on record.
		return nil, nil
	}
	return &r, nil
}

// Cancel ends a ticket that has no outcome yet. Cancelling a cancelled
// ticket answers as the first cancel did; a ticket with another outcome
// (matched, assigned, expired) gives ErrAlreadyDecided and its view.
func (s *Service) Cancel(ctx context.Context, ticketID, reason string) (View, error) {
	return s.end(ctx, ticketID, events.OwnerCancelled, events.StatusCancelled, reason)
}

// Expire ends a ticket that waited past the frontend's maximum; it is the
// results tracker's Expirer.
func (s *Service) Expire(ctx context.Context, ticketID string) {
	if _, err := s.end(ctx, ticketID, events.OwnerExpired, events.StatusExpired, "no match within the frontend's maximum wait"); err != nil && !errors.Is(err, ErrAlreadyDecided) {
		s.log.Error("expire ticket", "ticket_id", ticketID, "err", err)
	}
}

func (s *Service) end(ctx context.Context, ticketID, owner string, status events.Status, reason string) (View, error) {
	rec, err := s.Record(ctx, ticketID)
	if err != nil {
		return View{}, err
	}
	won, cur, err := s.claims.Claim(ctx, ticketID, owner)
	if err != nil {
		return View{}, err
	}
	if !won {
		v, gerr := s.Get(ctx, ticketID)
		if gerr != nil {
			return View{}, gerr
		}
		if v.Status == events.StatusQueued {
			// The claim is decided but its result is not out yet: say what
			// the claim says.
			v.Status = events.StatusMatched
			if cur == events.OwnerCancelled || cur == events.OwnerSuperseded {
				v.Status = events.StatusCancelled
			} else if cur == events.OwnerExpired {
				v.Status = events.StatusExpired
			}
		}
		return v, fmt.Errorf("%w: %s", ErrAlreadyDecided, v.Status)
	}
	res := events.Result{TicketID: ticketID, Status: status, Reason: reason}
	for _, p := range rec.Ticket.Players() {
		res.PlayerID = p
		if err := s.pub.Result(ctx, res); err != nil {
			return View{}, fmt.Errorf("tell %s: %w", p, err)
		}
	}
	// A hint for matchers to drop it now; the claim already rules it out.
	msg, err := events.NewMsg(ctx, s.subj.Cancel(rec.Region, rec.Tier), "", events.Cancel{
		SchemaVersion: events.SchemaVersion, TicketID: ticketID, Region: rec.Region, Tier: rec.Tier, Mode: rec.Ticket.Mode,
	})
	if err == nil {
		err = s.js.Conn().PublishMsg(msg)
	}
	if err != nil {
		s.log.Warn("cancel notice not sent; matchers will find the claim", "ticket_id", ticketID, "err", err)
	}
	return ViewOf(rec, &res), nil
}

// Record returns the stored record of a ticket.
func (s *Service) Record(ctx context.Context, ticketID string) (Record, error) {
	if ticketID == "" || len(ticketID) > 64 {
		return Record{}, ErrNotFound
	}
	entry, err := s.kv.Get(ctx, ticketID)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
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
