package events

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// Decided is a match's decision as Decide returns it.
type Decided struct {
	Decision Decision
	First    bool
	Err      error
}

// DecideBatch decides each of matchIDs as Decide does, wants[i] for
// matchIDs[i], every decision sent together: one round trip for the
// batch when none is decided yet. A match found decided goes the whole
// way of Decide, which reads what stands. out[i] is matchIDs[i]'s.
func (d *Decisions) DecideBatch(ctx context.Context, matchIDs []string, wants []Decision) []Decided {
	writes := make([]KVWrite, len(matchIDs))
	for i, id := range matchIDs {
		writes[i] = KVWrite{Key: decisionKey(id), Value: []byte(wants[i])}
	}
	errs := CreateAll(ctx, d.kv, writes)
	out := make([]Decided, len(matchIDs))
	var wg sync.WaitGroup
	for i, err := range errs {
		switch {
		case err == nil:
			out[i] = Decided{Decision: wants[i], First: true}
		case keyExists(err):
			wg.Go(func() {
				decision, first, err := d.Decide(ctx, matchIDs[i], wants[i])
				out[i] = Decided{decision, first, err}
			})
		default:
			out[i] = Decided{Err: fmt.Errorf("decide match %s: %w", matchIDs[i], err)}
		}
	}
	wg.Wait()
	return out
}

// MarkSentBatch marks each of matchIDs sent, as MarkSent does, the marks
// sent together. errs[i] is matchIDs[i]'s.
func (d *Decisions) MarkSentBatch(ctx context.Context, matchIDs []string) []error {
	writes := make([]KVWrite, len(matchIDs))
	for i, id := range matchIDs {
		writes[i] = KVWrite{Key: sentKey(id), Value: []byte(sentValue)}
	}
	errs := PutAll(ctx, d.kv, writes)
	for i, err := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("mark match %s sent: %w", matchIDs[i], err)
		}
	}
	return errs
}

// MatchMsg is m as Match publishes it: on its region's allocations
// subject, its id the message id, with the Meta ctx carries.
func (p *Publisher) MatchMsg(ctx context.Context, m Match) (*nats.Msg, error) {
	m.SchemaVersion = SchemaVersion
	return NewMsg(ctx, p.subj.Allocation(m.Region), m.MatchID, m)
}

// ResultMsg is r as Result publishes it.
func (p *Publisher) ResultMsg(ctx context.Context, r Result) (*nats.Msg, error) {
	return p.resultMsg(ctx, r)
}

// PublishAll publishes msgs with PublishAll on p's JetStream.
func (p *Publisher) PublishAll(ctx context.Context, msgs []*nats.Msg) []error {
	return PublishAll(ctx, p.js, msgs)
}
