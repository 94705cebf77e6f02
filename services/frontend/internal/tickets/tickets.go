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
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
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
	ErrForbidden = errors.New("a player may queue only for themself or a party they are in")
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

// Record is what the tickets bucket keeps per ticket. Its owners are the
// ticket's players (Ticket.Players): they, and the server role, may read,
// follow and cancel it.
type Record struct {
	Ticket      events.Ticket `json:"ticket"`
	Region      string        `json:"region"`
	Tier        string        `json:"tier"`
	RequestHash string        `json:"request_hash"`
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
	players *events.Players
	subj    events.Subjects
	pub     *events.Publisher
	// told tells the players of a ticket this frontend superseded.
	told    events.SupersededFunc
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
	players, err := events.NewPlayers(ctx, js, subj, claims)
	if err != nil {
		return nil, err
	}
	if cfg.MaxPartySize <= 0 {
		cfg.MaxPartySize = events.MaxPartySize
	}
	pub := events.NewPublisher(js, subj)
	return &Service{
		cfg: cfg, js: js, kv: kv, results: results, claims: claims, players: players, subj: subj,
		pub: pub, tracker: tracker, admit: admit, log: log, now: time.Now,
		told: pub.TellSuperseded(cfg.Regions, func(err error) { log.Warn("cancel notice not sent; matchers will find the claim", "err", err) }),
	}, nil
}

// Create validates req, stores the ticket record, starts following the
// player's results and then publishes the ticket. With an idempotency key
// (or a client ticket id) a repeated request gets the same ticket back; the
// publish is repeated too, which JetStream's duplicate window stores once,
// so a request whose first attempt died between the record and the publish
// still gets its ticket queued.
//
// Who may ask for what: a player caller queues for themself (a request
// naming no player gets the caller's id) or a party they are in, and may
// not choose the ticket id (a chosen id names a ticket for everyone, so a
// player who guessed or saw one could otherwise replay it); the server
// role may do all of it. An idempotency key is scoped to its caller: the
// ticket id is a hash of the caller and the key, so the same key from
// another caller names another ticket.
func (s *Service) Create(ctx context.Context, caller identity.Caller, req Request, idempotencyKey string) (View, error) {
	if err := Authorize(caller, &req); err != nil {
		return View{}, err
	}
	t, region, tier, err := s.build(req)
	if err != nil {
		return View{}, err
	}
	hash := requestHash(req)
	switch {
	case t.TicketID != "":
	case idempotencyKey != "":
		t.TicketID = "i" + hashHex(caller.Key()+"\x00"+idempotencyKey)
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
			return s.View(ctx, old)
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
	if err := s.tracker.Track(ctx, t.TicketID, t.Players()[0], t.CreatedAt, &results.Origin{Region: region, Tier: tier, Mode: t.Mode, Players: t.Players()}); err != nil {
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
	if err := s.take(ctx, rec); err != nil {
		// Queued, and its shard's owner takes it in all the same; the
		// client may retry with the same key to hear it was taken.
		return View{}, err
	}
	return ViewOf(rec, nil), nil
}

// take makes a queued ticket its players' live ticket before the client
// hears 202, superseding (and telling) any older ticket of theirs still
// waiting, whatever region or path it came by (events.Players). So from
// the 202 on, an older ticket of the player can never be matched; the
// matcher's own take of this ticket finds it live and changes nothing.
// Over NATS there is no such moment: a ticket published there supersedes
// when its shard's owner takes it in.
func (s *Service) take(ctx context.Context, rec Record) error {
	_, err := s.players.Take(ctx, events.LiveTicket{
		TicketID: rec.Ticket.TicketID, Players: rec.Ticket.Players(), Region: rec.Region, Tier: rec.Tier,
		Mode: rec.Ticket.Mode, CreatedAt: rec.Ticket.CreatedAt,
	}, s.told)
	if err != nil {
		return fmt.Errorf("take ticket %s: %w", rec.Ticket.TicketID, err)
	}
	return nil
}

// Authorize checks a request against its caller, filling in a player
// caller's own id when the request names nobody.
func Authorize(c identity.Caller, req *Request) error {
	if c.Server {
		return nil
	}
	if req.TicketID != "" {
		return &events.ValidationError{Kind: "request", Fields: []events.FieldError{{Field: "ticket_id", Reason: "only a server credential may choose a ticket id; use an Idempotency-Key"}}}
	}
	switch {
	case req.PlayerID == "" && req.Party == nil:
		req.PlayerID = c.PlayerID
	case req.PlayerID != "" && req.PlayerID != c.PlayerID:
		return fmt.Errorf("%w: player_id is not the caller's", ErrForbidden)
	case req.Party != nil && !slices.Contains(req.Party, c.PlayerID):
		return fmt.Errorf("%w: the caller is not in the party", ErrForbidden)
	}
	return nil
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
	return s.take(ctx, rec)
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

// Get reports where a ticket stands, for a caller that owns it (anyone
// else gets ErrNotFound, as for an unknown id).
func (s *Service) Get(ctx context.Context, caller identity.Caller, ticketID string) (View, error) {
	rec, err := s.RecordFor(ctx, caller, ticketID)
	if err != nil {
		return View{}, err
	}
	return s.View(ctx, rec)
}

// View is a stored record with its outcome so far: Get for a caller that
// already holds the ticket's record (read once, ownership checked).
func (s *Service) View(ctx context.Context, rec Record) (View, error) {
	r, err := s.outcome(ctx, rec)
	if err != nil {
		return View{}, err
	}
	return ViewOf(rec, r), nil
}

// outcome is the most advanced result of a ticket, read from JetStream.
// Usually it is the newest result on its first player's subject. When
// that one is about another ticket of the player (a newer one), the
// ticket's claim says whether it has an outcome at all, and the player's
// stored results (RESULTS keeps the last few per player) are read one by
// one with a subject-filtered get for the ticket's own; if they are gone
// too, the claim alone says what became of it.
func (s *Service) outcome(ctx context.Context, rec Record) (*events.Result, error) {
	id := rec.Ticket.TicketID
	subject := s.subj.Result(rec.Ticket.Players()[0])
	raw, err := s.results.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		raw, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("result of ticket %s: %w", id, err)
	}
	if raw != nil {
		if r, err := events.DecodeResult(raw.Data); err == nil && r.TicketID == id {
			return &r, nil
		}
	}
	owner, err := s.claims.Owner(ctx, id)
	if err != nil || owner == "" {
		return nil, err // no claim: it is still queued
	}
	var best *events.Result
	for seq := uint64(1); raw != nil; {
		m, err := s.results.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("results of ticket %s: %w", id, err)
		}
		if r, err := events.DecodeResult(m.Data); err == nil && r.TicketID == id && (best == nil || results.Rank(r.Status) >= results.Rank(best.Status)) {
			best = &r
		}
		if m.Sequence >= raw.Sequence {
			break // the newest, read above
		}
		seq = m.Sequence + 1
	}
	if best != nil {
		return best, nil
	}
	return claimed(id, rec.Ticket.Players()[0], owner), nil
}

// claimed is the result a claim implies, for a ticket whose results are no
// longer (or not yet) in the stream.
func claimed(ticketID, player, owner string) *events.Result {
	r := &events.Result{TicketID: ticketID, PlayerID: player}
	switch owner {
	case events.OwnerCancelled:
		r.Status, r.Reason = events.StatusCancelled, "cancelled"
	case events.OwnerSuperseded:
		r.Status, r.Reason = events.StatusCancelled, "superseded by a newer ticket of the player"
	case events.OwnerExpired:
		r.Status, r.Reason = events.StatusExpired, "no match within the maximum wait"
	case events.OwnerFailed:
		r.Status, r.Reason = events.StatusFailed, "failed"
	default:
		r.Status = events.StatusMatched
		r.MatchID, _ = events.OwnerMatchID(owner)
	}
	return r
}

// Cancel ends a ticket that has no outcome yet, for a caller that owns it
// (anyone else gets ErrNotFound). Cancelling a cancelled ticket answers as
// the first cancel did; a ticket with another outcome (matched, assigned,
// expired) gives ErrAlreadyDecided and its view.
func (s *Service) Cancel(ctx context.Context, caller identity.Caller, ticketID, reason string) (View, error) {
	rec, err := s.RecordFor(ctx, caller, ticketID)
	if err != nil {
		return View{}, err
	}
	return s.end(ctx, rec, events.OwnerCancelled, events.StatusCancelled, reason)
}

// Expire ends a ticket that waited past the frontend's maximum; it is the
// results tracker's Expirer.
func (s *Service) Expire(ctx context.Context, ticketID string) {
	rec, err := s.Record(ctx, ticketID)
	if err == nil {
		_, err = s.end(ctx, rec, events.OwnerExpired, events.StatusExpired, "no match within the frontend's maximum wait")
	}
	if err != nil && !errors.Is(err, ErrAlreadyDecided) {
		s.log.Error("expire ticket", "ticket_id", ticketID, "err", err)
	}
}

func (s *Service) end(ctx context.Context, rec Record, owner string, status events.Status, reason string) (View, error) {
	ticketID := rec.Ticket.TicketID
	won, cur, err := s.claims.Claim(ctx, ticketID, owner)
	if err != nil {
		return View{}, err
	}
	if !won {
		v, gerr := s.View(ctx, rec)
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
	if err := s.pub.CancelNotice(ctx, rec.Region, rec.Tier, ticketID, rec.Ticket.Mode); err != nil {
		s.log.Warn("cancel notice not sent; matchers will find the claim", "ticket_id", ticketID, "err", err)
	}
	return ViewOf(rec, &res), nil
}

// RecordFor returns the stored record of a ticket the caller owns;
// ErrNotFound for one it does not.
func (s *Service) RecordFor(ctx context.Context, caller identity.Caller, ticketID string) (Record, error) {
	rec, err := s.Record(ctx, ticketID)
	if err != nil {
		return Record{}, err
	}
	if !rec.OwnedBy(caller) {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

// Record returns the stored record of a ticket, whoever asks.
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
