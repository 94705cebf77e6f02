package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// deadLetter is one dead letter as the CLI shows it: the record, where it
// is in the dead-letter stream, the flow it belongs to (its message's
// correlation id), and who the payload names when it is a ticket.
type deadLetter struct {
	Seq           uint64            `json:"seq"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	Record        events.DeadLetter `json:"record"`
	// TicketID and Players are read from the payload, leniently, when it
	// is a JSON object that names them.
	TicketID string   `json:"ticket_id,omitempty"`
	Players  []string `json:"players,omitempty"`
	// Replayable says whether `deadletters replay` would publish it now,
	// as ReplayTicketID; if not, WhyNot says why (replayCheck).
	Replayable     bool   `json:"replayable"`
	ReplayTicketID string `json:"replay_ticket_id"`
	WhyNot         string `json:"why_not"`
	meta           events.Meta
}

// readDeadLetter reads the dead letter at seq of the dead-letter stream.
func (s *session) readDeadLetter(ctx context.Context, stream jetstream.Stream, seq uint64, next bool) (*deadLetter, error) {
	var opts []jetstream.GetMsgOpt
	if next {
		opts = append(opts, jetstream.WithGetMsgSubject(s.subj.AllDeadLetters()))
	}
	raw, err := stream.GetMsg(ctx, seq, opts...)
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	d := &deadLetter{Seq: raw.Sequence}
	if err := json.Unmarshal(raw.Data, &d.Record); err != nil {
		return nil, fmt.Errorf("dead letter %d: not a dead-letter record: %w", raw.Sequence, err)
	}
	d.meta = flowOf(d.Record, raw.Header)
	d.CorrelationID = d.meta.CorrelationID
	var who struct {
		TicketID any      `json:"ticket_id"`
		PlayerID any      `json:"player_id"`
		Party    []string `json:"party"`
	}
	if json.Unmarshal(d.Record.Payload, &who) == nil {
		d.TicketID, _ = who.TicketID.(string)
		if p, ok := who.PlayerID.(string); ok && p != "" {
			d.Players = []string{p}
		}
		d.Players = append(d.Players, who.Party...)
	}
	d.ReplayTicketID = replayTicketID(d)
	whyNot, err := s.replayCheck(ctx, d, time.Now())
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: whether it can be replayed: %w", d.Seq, err)
	}
	d.Replayable = whyNot == nil
	if whyNot != nil {
		d.WhyNot = whyNot.Error()
	}
	return d, nil
}

// flowOf is the flow a dead letter belongs to: the correlation id and
// traceparent its record kept of the refused message; when the record
// kept none (one written before records kept them, or the allocator's),
// the dead letter's own message's, which its writer may have sent with
// the flow it was handling. Never a mix of the two: a traceparent of
// one flow under the correlation id of another would mislead.
func flowOf(r events.DeadLetter, h nats.Header) events.Meta {
	if m := r.Meta(); m != (events.Meta{}) {
		return m
	}
	return events.MetaFromHeader(h)
}

func (s *session) deadLetterStream(ctx context.Context) (jetstream.Stream, error) {
	stream, err := s.js.Stream(ctx, s.subj.DeadLetterStream())
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	return stream, nil
}

func deadLettersListCmd(fs *flag.FlagSet) runFunc {
	limit := atLeastOne(20)
	fs.Var(&limit, "limit", "list this `number` of dead letters, the latest")
	return func(ctx context.Context, s *session, _ []string) error {
		stream, err := s.deadLetterStream(ctx)
		if err != nil {
			return err
		}
		st := stream.CachedInfo().State
		list := []*deadLetter{}
		if st.Msgs > 0 {
			seq := max(st.FirstSeq, st.LastSeq-min(st.LastSeq, uint64(limit))+1)
			for seq <= st.LastSeq {
				d, err := s.readDeadLetter(ctx, stream, seq, true)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					break
				}
				if err != nil {
					return err
				}
				list, seq = append(list, d), d.Seq+1
			}
		}
		if s.json {
			return printJSON(s.out, list)
		}
		t := newTable(s.out, "SEQ", "AT", "SOURCE", "SUBJECT", "TICKET", "PLAYERS", "REASON")
		for _, d := range list {
			t.row(fmt.Sprint(d.Seq), at(d.Record.At), d.Record.Source, d.Record.Subject, d.TicketID, strings.Join(d.Players, ","), cut(d.Record.Reason, 80))
		}
		return t.flush()
	}
}

// deadLetterAt reads the dead letter of sequence arg (checkArgs checked
// it is one), for show and replay.
func (s *session) deadLetterAt(ctx context.Context, arg string) (*deadLetter, error) {
	seq, _ := strconv.ParseUint(arg, 10, 64)
	stream, err := s.deadLetterStream(ctx)
	if err != nil {
		return nil, err
	}
	return s.readDeadLetter(ctx, stream, seq, false)
}

func deadLettersShowCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, s *session, args []string) error {
		d, err := s.deadLetterAt(ctx, args[0])
		if err != nil {
			return err
		}
		if s.json {
			return printJSON(s.out, d)
		}
		return writeDeadLetter(s.out, d)
	}
}

func writeDeadLetter(w io.Writer, d *deadLetter) error {
	r := d.Record
	payload := r.Text
	if payload == "" {
		payload = fmt.Sprintf("%d bytes, not UTF-8 or cut (-json shows them in base64)", len(r.Payload))
	}
	if r.PayloadBytes > 0 {
		payload = fmt.Sprintf("cut to %d of %d bytes", len(r.Payload), r.PayloadBytes)
	}
	section(w, fmt.Sprintf("dead letter %d", d.Seq),
		[2]string{"at", at(r.At)},
		[2]string{"source", r.Source},
		[2]string{"subject", r.Subject},
		[2]string{"stream seq", fmt.Sprint(r.StreamSeq)},
		[2]string{"correlation id", d.CorrelationID},
		[2]string{"reason", r.Reason},
		[2]string{"ticket", d.TicketID},
		[2]string{"players", strings.Join(d.Players, ", ")},
		[2]string{"payload", payload},
		[2]string{"replay", replayLine(d)},
	)
	if len(r.Fields) == 0 {
		return nil
	}
	t := newTable(w, "FIELD", "REASON")
	for _, f := range r.Fields {
		t.row(f.Field, f.Reason)
	}
	return t.flush()
}

// replayLine is the table's answer to "can it be replayed?".
func replayLine(d *deadLetter) string {
	if d.Replayable {
		return "yes, as ticket " + d.ReplayTicketID
	}
	return "no: " + d.WhyNot
}
