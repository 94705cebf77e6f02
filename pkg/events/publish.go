package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers carried on every message this package publishes. The correlation
// id uses watermill's metadata key, so watermill's CorrelationID middleware
// and our services agree; the trace context is W3C traceparent.
const (
	HeaderCorrelationID = "correlation_id"
	HeaderTraceParent   = "traceparent"
	// HeaderHome marks a visitor (a ticket offered to another shard, see
	// [Publisher.Offer]) with the region of the shard it was published
	// to.
	HeaderHome = "Quickmatch-Home"
	// HeaderRules stamps a ticket with the version of the rule set it
	// was checked under (rules.Set.Version; see
	// [Publisher.TicketUnder]): a matcher whose own rule set refuses it
	// and names another version waits a while for that set to reach it
	// before it refuses the ticket for good. Only a hint: it can delay
	// the refusal of its own ticket, never accept one.
	HeaderRules = "Quickmatch-Rules"
)

// Meta is the context that travels with a ticket through every service.
type Meta struct {
	CorrelationID string
	TraceParent   string
}

type metaKey struct{}

// WithMeta returns a context that carries m to the publish helpers.
func WithMeta(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// MetaFrom returns the Meta carried by ctx, or the zero Meta.
func MetaFrom(ctx context.Context) Meta {
	m, _ := ctx.Value(metaKey{}).(Meta)
	return m
}

// MetaFromHeader reads the Meta of a received message, Bounded.
func MetaFromHeader(h nats.Header) Meta {
	if h == nil {
		return Meta{}
	}
	return Meta{CorrelationID: h.Get(HeaderCorrelationID), TraceParent: h.Get(HeaderTraceParent)}.Bounded()
}

// NewCorrelationID returns a random id for a flow that arrives without one.
func NewCorrelationID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// NewMsg builds a message with a JSON payload, a Nats-Msg-Id for JetStream's
// duplicate window, and the Meta carried by ctx.
func NewMsg(ctx context.Context, subject, msgID string, payload any) (*nats.Msg, error) {
	data, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %T for %s: %w", payload, subject, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	m := MetaFrom(ctx)
	if m.CorrelationID != "" {
		msg.Header.Set(HeaderCorrelationID, m.CorrelationID)
	}
	if m.TraceParent != "" {
		msg.Header.Set(HeaderTraceParent, m.TraceParent)
	}
	return msg, nil
}

// Publisher publishes the payloads of this package on their subjects with
// idempotent message ids. Every method waits for JetStream's ack: when it
// returns nil the message is stored.
type Publisher struct {
	js   jetstream.JetStream
	subj Subjects
}

// NewPublisher returns a Publisher for one deployment.
func NewPublisher(js jetstream.JetStream, subj Subjects) *Publisher {
	return &Publisher{js: js, subj: subj}
}

func (p *Publisher) publish(ctx context.Context, subject, msgID string, payload any) (*jetstream.PubAck, error) {
	msg, err := NewMsg(ctx, subject, msgID, payload)
	if err != nil {
		return nil, err
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", subject, err)
	}
	return ack, nil
}

// Ticket publishes a ticket on its shard's subject. The ticket id is the
// message id: a retried publish of the same ticket is stored once.
func (p *Publisher) Ticket(ctx context.Context, region, tier string, t Ticket) (*jetstream.PubAck, error) {
	return p.TicketUnder(ctx, region, tier, t, "")
}

// TicketUnder publishes a ticket as Ticket does, stamped with the version
// of the rule set it was checked under (HeaderRules), unless that is
// empty.
func (p *Publisher) TicketUnder(ctx context.Context, region, tier string, t Ticket, rulesVersion string) (*jetstream.PubAck, error) {
	msg, err := TicketMsg(ctx, p.subj, region, tier, t, rulesVersion)
	if err != nil {
		return nil, err
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return ack, nil
}

// TicketMsg is the message TicketUnder publishes, for a caller that
// publishes it its own way (the frontend, asynchronously, alongside the
// ticket's record): the ticket id as the message id, the rule set's
// version in HeaderRules unless empty.
func TicketMsg(ctx context.Context, subj Subjects, region, tier string, t Ticket, rulesVersion string) (*nats.Msg, error) {
	if t.TicketID == "" {
		return nil, fmt.Errorf("publish ticket: %w", &ValidationError{Kind: "ticket", Fields: []FieldError{{Field: "ticket_id", Reason: "required when publishing from code"}}})
	}
	if t.SchemaVersion == 0 {
		t.SchemaVersion = SchemaVersion
	}
	msg, err := NewMsg(ctx, subj.Ticket(region, tier), t.TicketID, t)
	if err != nil {
		return nil, err
	}
	if rulesVersion != "" {
		msg.Header.Set(HeaderRules, rulesVersion)
	}
	return msg, nil
}

// Match publishes an allocation request; the match id is the message id.
func (p *Publisher) Match(ctx context.Context, m Match) error {
	m.SchemaVersion = SchemaVersion
	_, err := p.publish(ctx, p.subj.Allocation(m.Region), m.MatchID, m)
	return err
}

// Result publishes a result on the player's subject. Ticket, player and
// status make the message id, so each status of a ticket is stored once.
func (p *Publisher) Result(ctx context.Context, r Result) error {
	msg, err := p.resultMsg(ctx, r)
	if err != nil {
		return err
	}
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return nil
}

// resultMsg is r as published: the schema version, the time if unset,
// the player's subject and the result's message id.
func (p *Publisher) resultMsg(ctx context.Context, r Result) (*nats.Msg, error) {
	r.SchemaVersion = SchemaVersion
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	return NewMsg(ctx, p.subj.Result(r.PlayerID), ResultMsgID(r), r)
}

// Results publishes several results at once (PublishAll: every publish
// sent before any ack is awaited, one round trip, and a ctx without a
// deadline bound by the JetStream's default timeout). It returns the
// first error; the results that were stored stay stored (a retry of all
// of them is deduplicated by message id).
func (p *Publisher) Results(ctx context.Context, rs []Result) error {
	msgs := make([]*nats.Msg, 0, len(rs))
	for _, r := range rs {
		msg, err := p.resultMsg(ctx, r)
		if err != nil {
			return err
		}
		msgs = append(msgs, msg)
	}
	for _, err := range PublishAll(ctx, p.js, msgs) {
		if err != nil {
			return err
		}
	}
	return nil
}

// TellSuperseded is the SupersededFunc of the services (Claims.Tell
// calls it): it tells old's players (a cancelled result naming the
// newer ticket, worded as Claims.Tell words every outcome, published
// before it returns), then sends a cancel notice for old to the shard
// of its tier in every region of regions: its home shard, and those it
// may be visiting. The notices are hints on core NATS, as a frontend's
// cancel is: the claim made before calling it is what keeps old out of
// every match. A notice that cannot be sent is handed to notice (which
// may be nil) and does not fail the call.
func (p *Publisher) TellSuperseded(regions Regions, notice func(error)) SupersededFunc {
	return func(ctx context.Context, old LiveTicket, newer string) error {
		rs := Telling{Ticket: old, Owner: OwnerSuperseded, Newer: newer}.results()
		if err := p.Results(ctx, rs); err != nil {
			return fmt.Errorf("tell the players of superseded ticket %s: %w", old.TicketID, err)
		}
		for _, region := range regions {
			if err := p.CancelNotice(ctx, region, old.Tier, old.TicketID, old.Mode); err != nil && notice != nil {
				notice(fmt.Errorf("cancel notice for superseded ticket %s to %s: %w", old.TicketID, region, err))
			}
		}
		return nil
	}
}

// ResultMsgID is the message id of a result: the same for a repeat of it
// (a retried publish, a redelivered match), another for a ticket's next
// match after it was queued again.
func ResultMsgID(r Result) string {
	id := r.TicketID + ":" + r.PlayerID + ":" + string(r.Status)
	if r.MatchID != "" {
		id += ":" + r.MatchID
	}
	return id
}

// DeadLetter records a rejected message.
func (p *Publisher) DeadLetter(ctx context.Context, d DeadLetter) error {
	id := fmt.Sprintf("%s:%s:%d", d.Source, d.Subject, d.StreamSeq)
	if d.StreamSeq == 0 {
		id = "" // not from a stream: nothing to deduplicate on
	}
	_, err := p.publish(ctx, p.subj.DeadLetter(d.Source), id, d)
	return err
}
