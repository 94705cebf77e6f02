package pool

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
)

// Entry is one waiting ticket. The pool owns its links.
type Entry struct {
	TicketID string
	Players  []string
	Skill    int
	// Created is when the ticket was made (Unix nanoseconds).
	Created int64
	// Ack is the reply subject that acks the ticket's message: the pool
	// keeps it instead of the message, which is much larger.
	Ack string
	// Seq is the stream sequence of the ticket's message: a redelivery
	// has the same, a second message for the same ticket id another.
	Seq uint64
	// Visitor marks a ticket whose home is another shard: another
	// region's, or another tier's (Tier).
	Visitor bool
	// Offered marks a ticket its shard offered to another shard, from
	// the moment the offer is planned (a publish that failed may have
	// been stored all the same): copies of it may wait elsewhere, which a
	// matched notice is to drop once it is matched. (Beside Visitor: two
	// bools in one word.)
	Offered bool
	// Tier is the tier of the ticket's own shard when it is a visitor
	// from another tier; "" otherwise.
	Tier string
	// Latencies are the regions the ticket may also play in, by latency.
	Latencies []RegionLatency
	// Attrs are the ticket's attributes as canonical JSON (what
	// encoding/json writes for events.Attributes: names sorted), "" when
	// it has none. A pool keeps them as one string rather than the decoded
	// maps, which cost about ten times as much per waiting ticket
	// (BENCHMARKS.md); whoever needs them back (an offer, a requeue, a
	// match function, a rule set reload) decodes them with Attributes.
	// Set them with SetAttributes.
	Attrs string
	// Values are the attributes compiled for the rules of the pool's mode
	// (rules.Mode.Compile): what fits compares. Set by SetAttributes,
	// recompiled by Add and SetMode when the pool's mode is not the one
	// they were compiled for. Never changed in place: entries may share.
	Values rules.Values
	// Trace is what the ticket's spans need, when it has any of it: nil
	// for a ticket that came with no trace context nor correlation id
	// while tracing is off. A pointer: 8 bytes per waiting ticket (which
	// the Entry's size class had free), not the fields' 40.
	Trace *Trace

	// compiled is the mode Values and band were compiled for.
	compiled     *rules.Mode
	sub          *sublist
	bprev, bnext *Entry // skill bucket and class, oldest first
	aprev, anext *Entry // arrival order
	band         band
	// dueAt is its place among the tickets created in its second
	// (Pool.due).
	dueAt int32
}

// Trace is a waiting ticket's trace context (its message's W3C
// traceparent, "" if none), its correlation id ("" if none), and when it
// entered the pool (Unix nanoseconds), where its "wait" span starts.
type Trace struct {
	Parent        string
	CorrelationID string
	Entered       int64
}

// RegionLatency is one other region a ticket reported, and whether the
// ticket was offered to that region's pool yet.
type RegionLatency struct {
	Region  string
	MS      int
	Offered bool
}

// Waited is how long the ticket has waited at now.
func (e *Entry) Waited(now time.Time) time.Duration { return time.Duration(now.UnixNano() - e.Created) }

// SetAttributes keeps a ticket's attributes on e: Attrs, their canonical
// JSON, and Values, compiled for m, which should be the mode of the pool
// e goes to (Pool.Mode; Add compiles again for a mode reloaded since).
// The attributes have passed the rule set's Check; the only error is an
// encoding one (a number that is not finite, which Check refuses).
func (e *Entry) SetAttributes(m *rules.Mode, a *events.Attributes) error {
	e.Attrs = ""
	if !a.Empty() {
		b, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("ticket %s attributes: %w", e.TicketID, err)
		}
		e.Attrs = string(b)
	}
	e.Values, e.band, e.compiled = m.Compile(a), bandOf(m, a), m
	return nil
}

// Attributes decodes Attrs: nil when the ticket has none. Each call
// decodes afresh (a few microseconds: only offers, requeues, match
// functions and a reload that changed the rules need it), so the caller
// owns the result.
func (e *Entry) Attributes() (*events.Attributes, error) {
	if e.Attrs == "" {
		return nil, nil
	}
	a := &events.Attributes{}
	if err := json.Unmarshal([]byte(e.Attrs), a); err != nil {
		return nil, fmt.Errorf("ticket %s attributes: %w", e.TicketID, err)
	}
	return a, nil
}
