package chaos

// What the store says of a ticket without an outcome: the checker trusts
// only acks and results, but once it finds a ticket lost, the history of
// its claim (who decided its outcome, and when) is what tells a claim
// whose result was never published from a ticket nobody decided.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Lost is an acknowledged ticket with no outcome in the history.
type Lost struct {
	TicketID   string    `json:"ticket_id"`
	PlayerID   string    `json:"player_id"`
	Frontend   string    `json:"frontend,omitempty"`
	AcceptedAt time.Time `json:"accepted_at"`
	// Claim is every revision of the ticket's claim, and of the record
	// that its outcome was told, as "<stored time> <op> <value>"; empty:
	// nobody claimed it.
	Claim []string `json:"claim"`
	// Stream is what the TICKETS stream (a work queue: a ticket acked is
	// gone) and the ticket's shard consumer say of it: still stored and
	// never acked (the consumer skipped it, or holds it), or gone (acked
	// by a matcher, or never stored).
	Stream string `json:"stream"`
	// Match, when its claim names a match, is whether the claim carries
	// the match (events.HeaderMatch: the match's record when the matches
	// bucket holds none), that match's keys in the matches bucket (its
	// record, decision and sent mark) and in the allocations bucket, as
	// the claim's lines are, and the last result stored for the player:
	// whether the match was decided, sent, and taken by an allocator
	// tells where its outcome stopped.
	Match []string `json:"match,omitempty"`
}

// lostTickets lists the acknowledged tickets without a terminal result,
// each with its claim's history (errors reading it are written there).
func lostTickets(ctx context.Context, js jetstream.JetStream, acked []Acked, results []events.Result) []Lost {
	done := map[string]bool{}
	for _, r := range results {
		if terminal[r.Status] {
			done[r.TicketID] = true
		}
	}
	var out []Lost
	var kv jetstream.KeyValue
	var claims *events.Claims
	var stored map[string]storedTicket
	for _, a := range acked {
		if done[a.TicketID] {
			continue
		}
		if stored == nil {
			stored = storedTickets(ctx, js)
		}
		l := Lost{TicketID: a.TicketID, PlayerID: a.PlayerID, Frontend: a.Frontend, AcceptedAt: a.AcceptedAt}
		if failed := stored[""].err; failed != nil {
			l.Stream = "TICKETS not read: " + failed.Error()
		} else {
			l.Stream = stored[a.TicketID].describe(ctx, js)
		}
		if kv == nil {
			var err error
			if kv, err = js.KeyValue(ctx, events.Subjects{}.ClaimsBucket()); err == nil {
				claims, err = events.NewClaims(ctx, js, events.Subjects{})
			}
			if err != nil {
				kv = nil
				l.Claim = []string{"claims bucket: " + err.Error()}
				out = append(out, l)
				continue
			}
		}
		l.Claim = append(claimHistory(ctx, kv, a.TicketID), claimHistory(ctx, kv, "told."+a.TicketID)...)
		l.Match = matchHistory(ctx, js, claims, a)
		out = append(out, l)
	}
	return out
}

// matchHistory is what the stores say of the match a's claim names (nil
// if it names none): its keys' histories, and the last result stored for
// a's player.
func matchHistory(ctx context.Context, js jetstream.JetStream, claims *events.Claims, a Acked) []string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := claims.Read(ctx, a.TicketID)
	if err != nil {
		return nil
	}
	id, isMatch := events.OwnerMatchID(c.Owner)
	if !isMatch {
		return nil
	}
	carries := "claims: " + a.TicketID + " carries its match"
	if c.Match == nil {
		carries = "claims: " + a.TicketID + " carries no match"
	}
	subj := events.Subjects{}
	out := []string{carries}
	for _, b := range []struct {
		bucket string
		keys   []string
	}{
		{subj.MatchesBucket(), events.MatchKeys(id)},
		{subj.AllocationsBucket(), []string{id}},
	} {
		kv, err := js.KeyValue(ctx, b.bucket)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", b.bucket, err))
			continue
		}
		for _, k := range b.keys {
			h := claimHistory(ctx, kv, k)
			if h == nil {
				h = []string{k + " none"}
			}
			for _, line := range h {
				out = append(out, b.bucket+": "+line)
			}
		}
	}
	st, err := js.Stream(ctx, subj.ResultsStream())
	if err == nil {
		var m *jetstream.RawStreamMsg
		if m, err = st.GetLastMsgForSubject(ctx, subj.Result(a.PlayerID)); err == nil {
			out = append(out, fmt.Sprintf("%s last result %s", m.Time.UTC().Format("15:04:05.000"), m.Data))
		}
	}
	if err != nil {
		out = append(out, "last result: "+err.Error())
	}
	return out
}

func claimHistory(ctx context.Context, kv jetstream.KeyValue, key string) []string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	es, err := kv.History(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", key, err)}
	}
	var out []string
	for _, e := range es {
		op := strings.TrimPrefix(e.Operation().String(), "KeyValue")
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Created().UTC().Format("15:04:05.000"), key, op, e.Value()))
	}
	return out
}

// storedTicket is a ticket message still in the TICKETS stream.
type storedTicket struct {
	seq     uint64
	subject string
	err     error // the scan of the stream failed
}

// storedTickets reads every message left in the TICKETS stream, by its
// ticket id (an "" key holds a failed scan's error).
func storedTickets(ctx context.Context, js jetstream.JetStream) map[string]storedTicket {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out := map[string]storedTicket{}
	st, err := js.Stream(ctx, events.Subjects{}.TicketsStream())
	if err != nil {
		out[""] = storedTicket{err: err}
		return out
	}
	for seq := uint64(1); ; seq++ {
		// next_by_subj: the first message at or after seq, skipping the
		// acked (deleted) ones.
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			out[""] = storedTicket{err: err}
			return out
		}
		var t struct {
			TicketID string `json:"ticket_id"`
		}
		if json.Unmarshal(m.Data, &t) == nil && t.TicketID != "" {
			out[t.TicketID] = storedTicket{seq: m.Sequence, subject: m.Subject}
		}
		seq = m.Sequence
	}
}

// describe says what the stream and the shard's consumer hold of a lost
// ticket (the zero storedTicket: it is not in the stream).
func (s storedTicket) describe(ctx context.Context, js jetstream.JetStream) string {
	if s.seq == 0 {
		return "not in TICKETS: acked by a matcher, or never stored"
	}
	out := fmt.Sprintf("in TICKETS at %d (%s), never acked", s.seq, s.subject)
	parts := strings.Split(s.subject, ".")
	if len(parts) != 3 {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, events.Subjects{}.TicketsStream(), events.ShardConsumer(parts[1], parts[2]))
	if err != nil {
		return out + "; consumer: " + err.Error()
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return out + "; consumer: " + err.Error()
	}
	return out + fmt.Sprintf("; consumer %s: delivered up to %d, ack floor %d, %d acks pending, %d redelivered, %d not delivered",
		ci.Name, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumAckPending, ci.NumRedelivered, ci.NumPending)
}
