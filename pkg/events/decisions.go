package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Decision is the one fate of a formed match: published, or undone.
type Decision string

// The decisions a match can get.
const (
	// DecisionPublished: the match goes to the allocator; its claims stay
	// its own, and whoever follows the decision publishes it again (the
	// match id makes that one match) and acks its tickets.
	DecisionPublished Decision = "published"
	// DecisionUndone: the match is never published; whoever follows the
	// decision moves the claims of its stale tickets to superseded (telling
	// their players) and gives the others back.
	DecisionUndone Decision = "undone"
)

// Decisions decide, once, whether a formed match is published or undone,
// when more than one worker may decide it: the matcher that formed it, and
// a worker that finds its claims (a matcher that stalls between claiming
// and checking looks dead to it). Each decides from its own check of the
// players bucket, at its own moment, so two checks of one match can
// disagree; the first decision stored is the match's, and every later
// decider follows it (see [Players] for the protocol).
//
// A decision is a key "<match id>.decided" in the matches bucket, created
// (compare-and-set on "no such key") like a claim, and never written
// again. Not a revision compare-and-set on the match's record: the record
// is written again (Put) whenever a matcher forms the same match again
// after a redelivery, which would wipe a decision kept in it, and every
// decider would need the record's revision as formed. A separate key is
// one round trip for the winner (two for a loser: it reads what won), has
// the record's lifetime (the bucket's TTL) and leaves the record as the
// readers of the bucket know it.
type Decisions struct {
	kv jetstream.KeyValue
}

// NewDecisions binds to the provisioned matches bucket.
func NewDecisions(ctx context.Context, js jetstream.JetStream, subj Subjects) (*Decisions, error) {
	// Read from the leader, as the claims: a decision or a sent mark not
	// found would be made again, or the match sent twice.
	kv, err := BindLeaderGets(ctx, js, subj.MatchesBucket())
	if err != nil {
		return nil, fmt.Errorf("matches bucket: %w", err)
	}
	return &Decisions{kv: kv}, nil
}

// decisionKey is the key of a match's decision. A match id has no dot
// (MatchID: "m" and hex), so it is never a match record's key.
func decisionKey(matchID string) string { return matchID + ".decided" }

// Decide records want as the decision of matchID unless one is recorded
// already, and returns the decision that stands: want if it won (or had
// won before: deciding is idempotent), else the one that did. first says
// whether this call made the decision (false when one was recorded
// already, even if it is want): a decider that was not first may follow
// a match another already sent (see [Decisions.Sent]).
func (d *Decisions) Decide(ctx context.Context, matchID string, want Decision) (decision Decision, first bool, err error) {
	_, err = d.kv.Create(ctx, decisionKey(matchID), []byte(want))
	if err == nil {
		return want, true, nil
	}
	if !keyExists(err) {
		return "", false, fmt.Errorf("decide match %s: %w", matchID, err)
	}
	cur, err := d.Decided(ctx, matchID)
	if err != nil {
		return "", false, err
	}
	if cur == "" {
		// Gone in between: only the bucket's TTL deletes a decision, long
		// after every claim of the match is gone.
		return "", false, fmt.Errorf("decide match %s: decision expired", matchID)
	}
	return cur, false, nil
}

// Decided returns the decision of matchID, or "" if there is none yet.
func (d *Decisions) Decided(ctx context.Context, matchID string) (Decision, error) {
	e, err := d.kv.Get(ctx, decisionKey(matchID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("decision of match %s: %w", matchID, err)
	}
	return Decision(e.Value()), nil
}

// sentKey is the key that records that a match decided published was
// sent: its results and its allocation request are stored. A match id has
// no dot, so it is never a record's or a decision's key.
func sentKey(matchID string) string { return matchID + ".sent" }

// MatchKeys are the keys a match has in the matches bucket: its record,
// its decision and its sent mark (for tools that read what became of a
// match, such as the chaos harness's report of a lost ticket).
func MatchKeys(matchID string) []string {
	return []string{matchID, decisionKey(matchID), sentKey(matchID)}
}

// sentValue is what the sent marker holds (its presence is what counts).
const sentValue = "sent"

// MarkSent records that matchID, decided published, was sent. Whoever
// follows the decision later (a worker recovering the match behind a
// copy of one of its tickets that met its claim) reads it (Sent) and
// does not send the match again: past DuplicateWindow the streams no
// longer know the match's message ids, and would store its "matched"
// results and allocation request a second time, and the players would
// hear "matched" and "assigned" twice. It lives in the matches bucket,
// written after the match's claims, so it outlives them (the bucket's
// TTL is theirs).
func (d *Decisions) MarkSent(ctx context.Context, matchID string) error {
	if _, err := d.kv.Put(ctx, sentKey(matchID), []byte(sentValue)); err != nil {
		return fmt.Errorf("mark match %s sent: %w", matchID, err)
	}
	return nil
}

// Sent reports whether matchID was sent (MarkSent).
func (d *Decisions) Sent(ctx context.Context, matchID string) (bool, error) {
	_, err := d.kv.Get(ctx, sentKey(matchID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("whether match %s was sent: %w", matchID, err)
	}
	return true, nil
}
