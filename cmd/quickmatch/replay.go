package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// Replaying a dead letter publishes its ticket again, on the subject it
// came by, after what refused it was fixed (a mode added to the rule set,
// a region served). What it publishes, and why:
//
//   - Only what replayCheck (replaycheck.go) lets through: a ticket the
//     dead-lettering ended failed, whose players have no undecided
//     ticket it would supersede, not replayed before.
//   - A new ticket id, replayTicketID. The refused ticket is decided:
//     its claim is failed (one claim, one outcome), so the same id would
//     be told "failed" again and never matched; and a ticket id taken by
//     other players stays theirs. The replay is a new ticket of the same
//     players.
//   - That id as its Nats-Msg-Id, never the original's: the original
//     (the frontend's, the ticket id) would be within the TICKETS
//     stream's duplicate window for two minutes and the replay dropped
//     silently. With the replay's own id a second replay within the
//     window is the duplicate (errReplayedAlready), before the matcher
//     has left any trace of the first that replayCheck would find.
//   - The payload as stored, but for ticket_id: its created_at, if it
//     had one, still bounds it (a ticket older than its mode's max wait
//     plus events.CreatedAtSlack is refused again); without one, it gets
//     the time of the check, so that a ticket of its players created
//     after the check is the newer one (replaycheck.go) and its wait
//     starts at the replay.
//   - The dead letter's correlation id and trace context, so the replay
//     is logged as the same flow. No rule-set stamp (the record does not
//     keep it): the ticket is judged at once by the rules in force.
//
// Only tickets are replayed: a match the allocator dead-lettered is
// marked failed in its allocation record and its players were told, so
// no allocator would allocate it again; a backfill request is its room's
// of that moment.

// errReplayedAlready: the replay's ticket left traces, or the stream
// took its message id before.
var errReplayedAlready = errors.New("replayed already")

// replayed is what a replay published, for -json.
type replayed struct {
	DeadLetter uint64   `json:"dead_letter"`
	Subject    string   `json:"subject"`
	TicketID   string   `json:"ticket_id"`
	Original   string   `json:"original_ticket_id,omitempty"`
	Players    []string `json:"players,omitempty"`
	Stream     string   `json:"stream"`
	StreamSeq  uint64   `json:"stream_seq"`
}

// replayable says whether d can be replayed: the region and tier of its
// ticket subject and its payload as a JSON object, or why not.
func (s *session) replayable(d *deadLetter) (map[string]json.RawMessage, error) {
	r := d.Record
	if _, _, err := s.subj.ParseTicket(r.Subject); err != nil {
		return nil, fmt.Errorf("not a ticket (only tickets are replayed): %w", err)
	}
	if r.PayloadBytes > 0 {
		return nil, fmt.Errorf("its payload was cut to %d of %d bytes (a ticket over the size limit): the ticket is not kept whole", len(r.Payload), r.PayloadBytes)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.Payload, &fields); err != nil || fields == nil {
		return nil, errors.New("its payload is not a JSON object: the matcher would refuse it again")
	}
	return fields, nil
}

// replayTicketID is the id a replay of d gives its ticket: the same for
// every replay of d (a second one is a duplicate), another for each dead
// letter. The original id with "-r<seq>" when that is a valid id, else
// one made from the dead letter's sequence and payload.
func replayTicketID(d *deadLetter) string {
	id := d.TicketID + "-r" + strconv.FormatUint(d.Seq, 10)
	if d.TicketID != "" && events.CheckID(id) == nil {
		return id
	}
	h := sha256.Sum256(d.Record.Payload)
	return "r" + strconv.FormatUint(d.Seq, 10) + "-" + hex.EncodeToString(h[:8])
}

func deadLettersReplayCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, s *session, args []string) error {
		d, err := s.deadLetterAt(ctx, args[0])
		if err != nil {
			return err
		}
		out, err := s.replay(ctx, d)
		if err != nil {
			return err
		}
		if s.json {
			return printJSON(s.out, out)
		}
		section(s.out, fmt.Sprintf("dead letter %d replayed", out.DeadLetter),
			[2]string{"subject", out.Subject}, [2]string{"ticket", out.TicketID},
			[2]string{"original ticket", out.Original}, [2]string{"stream seq", fmt.Sprintf("%s %d", out.Stream, out.StreamSeq)})
		return nil
	}
}

// replay publishes d's ticket again (see the top of this file), if
// replayCheck lets it through.
func (s *session) replay(ctx context.Context, d *deadLetter) (*replayed, error) {
	checked := time.Now()
	whyNot, err := s.replayCheck(ctx, d, checked)
	if err != nil {
		return nil, err
	}
	if whyNot != nil {
		return nil, fmt.Errorf("dead letter %d cannot be replayed: %w", d.Seq, whyNot)
	}
	return s.publishReplay(ctx, d, checked)
}

// publishReplay publishes d's ticket again, as replayCheck let it
// through at checked (see the top of this file).
func (s *session) publishReplay(ctx context.Context, d *deadLetter, checked time.Time) (*replayed, error) {
	fields, err := s.replayable(d)
	if err != nil {
		return nil, fmt.Errorf("dead letter %d cannot be replayed: %w", d.Seq, err)
	}
	id := replayTicketID(d)
	fields["ticket_id"], _ = json.Marshal(id) // a string always encodes
	if !hasCreatedAt(d.Record.Payload) {
		for k := range fields {
			if strings.EqualFold(k, "created_at") { // null or zero; one key, in any case
				delete(fields, k)
			}
		}
		fields["created_at"], _ = json.Marshal(checked.UTC()) // a time in range always encodes
	}
	msg, err := events.NewMsg(events.WithMeta(ctx, d.meta), d.Record.Subject, id, fields)
	if err != nil {
		return nil, err
	}
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("replay dead letter %d: publish %s: %w", d.Seq, d.Record.Subject, err)
	}
	if ack.Duplicate {
		return nil, fmt.Errorf("dead letter %d: %w as ticket %s (%s seq %d): nothing published", d.Seq, errReplayedAlready, id, ack.Stream, ack.Sequence)
	}
	return &replayed{DeadLetter: d.Seq, Subject: d.Record.Subject, TicketID: id, Original: d.TicketID,
		Players: d.Players, Stream: ack.Stream, StreamSeq: ack.Sequence}, nil
}

// hasCreatedAt reports whether a ticket's payload gives it a created_at,
// as the matcher reads it (encoding/json, field names in any case; null
// or the zero time is none). One that does not decode counts as given:
// the matcher refuses it again, as it did.
func hasCreatedAt(payload []byte) bool {
	var t struct {
		CreatedAt *time.Time `json:"created_at"`
	}
	if json.Unmarshal(payload, &t) != nil {
		return true
	}
	return t.CreatedAt != nil && !t.CreatedAt.IsZero()
}
