package events

import "time"

// Durations and limits of the topology. Each is chosen for a reason written
// next to it; change them here and nowhere else.
const (
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. Two
	// minutes covers a client's retry of the same publish after a timeout
	// or a reconnect (nats.go gives up on a publish after seconds), and a
	// matcher that re-forms the same match after a redelivery (AckWait 30 s).
	// A longer window costs server memory per message at high rates.
	DuplicateWindow = 2 * time.Minute

	// TicketMaxAge bounds how long a ticket can sit in the stream. No mode
	// waits longer than this; a ticket older than it is useless.
	TicketMaxAge = time.Hour

	// ResultMaxAge is how long a result can still be fetched by a client that
	// comes back to ask.
	ResultMaxAge = 2 * time.Hour

	// ResultsPerPlayer is how many results per player are kept: enough for
	// queued -> matched -> assigned of the current ticket and a few older.
	ResultsPerPlayer = 8

	// DeadLetterMaxAge is how long an operator has to look at a rejected
	// message.
	DeadLetterMaxAge = 7 * 24 * time.Hour

	// PoolAckWait is how long a shard owner may hold a waiting ticket (or
	// visitor) unacked in its pool: as long as a ticket can live. A live
	// owner never needs to say it is still working (no InProgress traffic
	// for a million waiting tickets); when an owner dies, the worker that
	// takes its shard resets the consumer, which redelivers every unacked
	// ticket at once.
	PoolAckWait = TicketMaxAge

	// PoolMaxAckPending bounds the waiting tickets of one shard: 2^20 is
	// past the 1M waiting-ticket target.
	PoolMaxAckPending = 1 << 20

	// WorkerTTL is how long a matcher worker counts as alive after its last
	// heartbeat, and LeaseTTL how long a shard lease lasts unrenewed.
	// Workers beat and renew every LeaseRenew, so a dead worker's shards
	// move within about WorkerTTL + LeaseRenew.
	WorkerTTL  = 3 * time.Second
	LeaseTTL   = 3 * time.Second
	LeaseRenew = time.Second

	// AllocatorAckWait covers a slow allocation (Kubernetes API retries).
	AllocatorAckWait = 30 * time.Second

	// AllocatorMaxDeliver bounds retries of one match. The allocator
	// dead-letters a match on its last delivery, so none is dropped silently.
	AllocatorMaxDeliver = 10

	// AllocatorMaxAckPending bounds matches in flight across allocators.
	AllocatorMaxAckPending = 4096

	// TicketRecordTTL is how long a ticket record stays in the tickets bucket.
	TicketRecordTTL = 2 * time.Hour

	// ClaimMargin keeps a claim past the last possible redelivery of its
	// ticket.
	ClaimMargin = 30 * time.Minute

	// CapacityTTL drops the capacity report of an allocator that stopped
	// reporting: a frontend then treats the region as unknown, not full.
	CapacityTTL = time.Minute
)

// recordsUncapped is the byte limit of the buckets that keep one record per
// ticket or match for a fixed time (ticket records, claims, match records,
// allocation records, live tickets by player): none. Their size follows
// the rate: about 6.5 MB per sustained ticket a second (315 B of ticket
// record for 2 h, 157 B of claim, 252 B of match record, 96 B of
// allocation record and 271 B of live ticket per player for 1.5 h,
// measured), so about 13 GB at 2,000 tickets/s. A byte cap below that
// stops the system after a while at a steady rate: a full bucket refuses
// writes, and with the 1 GiB cap they had, the match records would fill
// in about 35 minutes at 2,000 tickets/s, after which no match can be
// formed. Without one, only the JetStream server's storage, which the
// operator sizes, limits them.
// Their TTLs cannot be cut short instead: a claim must outlive every copy
// of its ticket.
const recordsUncapped = -1

// ticketsMsgSize is the tickets stream's message size limit: none but the
// server's max payload (see Streams).
const ticketsMsgSize = -1
