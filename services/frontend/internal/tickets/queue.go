package tickets

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// storeAndQueue stores a new ticket's record and queues the ticket, the
// two writes pipelined: the ticket's message is sent (not awaited), the
// record is written, and then the ticket's ack is awaited. So a creation
// costs one round trip for both, not two, and the client and the server
// write and read them in fewer system calls. It returns nil only when
// both are stored: a 202 still means the ticket is stored and queued.
//
// What the order gave up: a record that fails beside a ticket that is
// stored leaves a queued ticket no record names (the client hears the
// error, as when the publish fails after the record). That is the case
// take already has (queued, then not taken): a repeat with the same
// Idempotency-Key names the same ticket, stores its record and queues it
// again (one message: its id is the message id); a repeat without one
// is a newer ticket of the player and supersedes it when taken.
//
// The ticket is encoded once: the record carries the message's bytes.
func (s *Service) storeAndQueue(ctx context.Context, rec Record, rulesVersion string) error {
	id := rec.Ticket.TicketID
	msg, data, err := encode(ctx, s.subj, rec, rulesVersion)
	if err != nil {
		return err
	}
	fut, err := s.js.PublishMsgAsync(msg)
	if err != nil {
		return fmt.Errorf("queue ticket %s: publish %s: %w", id, msg.Subject, err)
	}
	_, storeErr := s.kv.Put(ctx, id, data)
	var queueErr error
	select {
	case <-fut.Ok():
	case err := <-fut.Err():
		queueErr = err
	case <-ctx.Done():
		// Maybe queued all the same, as a PublishMsg that timed out.
		queueErr = ctx.Err()
	}
	switch {
	case storeErr != nil:
		return fmt.Errorf("store ticket %s: %w", id, storeErr)
	case queueErr != nil:
		return fmt.Errorf("queue ticket %s: publish %s: %w", id, msg.Subject, queueErr)
	}
	return nil
}

// encode returns the message that queues rec's ticket and rec as the
// tickets bucket stores it, the ticket encoded once for both.
func encode(ctx context.Context, subj events.Subjects, rec Record, rulesVersion string) (*nats.Msg, []byte, error) {
	msg, err := events.TicketMsg(ctx, subj, rec.Shard.Region, rec.Shard.Tier, rec.Ticket, rulesVersion)
	if err != nil {
		return nil, nil, err
	}
	data, err := json.Marshal(encodedRecord{Ticket: msg.Data, Region: rec.Shard.Region, Tier: rec.Shard.Tier, RequestHash: rec.RequestHash})
	if err != nil {
		return nil, nil, fmt.Errorf("encode ticket record: %w", err)
	}
	return msg, data, nil
}

// encodedRecord is storedRecord with its ticket encoded already (the
// queued message's bytes): the same JSON (TestEncodedRecordIsTheStoredShape).
type encodedRecord struct {
	Ticket      json.RawMessage `json:"ticket"`
	Region      string          `json:"region"`
	Tier        string          `json:"tier"`
	RequestHash string          `json:"request_hash"`
}
