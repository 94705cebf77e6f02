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

	// PoolPullExpiry is how long a shard owner's pull requests live at the
	// server: a cut owner stops receiving within it, before the soonest
	// takeover; one second, the least nats.go takes. PoolMaxPullExpiry is
	// the longest a shard consumer takes (its MaxRequestExpires): a pull
	// asking for longer (an older matcher's, a tool's) is refused by the
	// server, so that no process cut off keeps taking a shard's tickets on
	// a pull made before the cut past the soonest takeover, LeaseTTL -
	// LeaseRenew after it.
	PoolPullExpiry    = time.Second
	PoolMaxPullExpiry = LeaseTTL - LeaseRenew

	// WorkerTTL is how long a matcher worker counts as alive after its last
	// heartbeat, and LeaseTTL how long a shard lease lasts unrenewed.
	// Workers beat and renew every LeaseRenew.
	//
	// The takeover bound, stated here and nowhere else: the shards of a
	// worker that died (or was cut off) are taken by the others within
	// WorkerTTL + LeaseRenew + 4 x LeaseCallTimeout (6 s) of its last beat;
	// about WorkerTTL + LeaseRenew (4 s) when NATS answers in
	// milliseconds. The first round of another worker that comes WorkerTTL
	// after the last beat (rounds come every LeaseRenew) leaves the dead
	// worker out, and finds its leases lapsed (LeaseTTL <= WorkerTTL); that
	// round is four calls deep (list the workers, read their beats, read a
	// lease, write it), each within LeaseCallTimeout. It holds while the
	// leaders of the workers and leases streams are on the takers' side of
	// a cut; otherwise a leader is elected first (see package shard). A
	// worker cut from what it receives only has its last beat up to
	// LeaseRenew after the cut (that round's writes land unanswered; then
	// it goes quiet, package shard), so its shards are taken within
	// LeaseRenew more of the cut.
	WorkerTTL  = 3 * time.Second
	LeaseTTL   = 3 * time.Second
	LeaseRenew = time.Second

	// LeaseClockSkew is how far the clocks of two matcher workers may
	// disagree: an owner that cannot renew a lease gives the shard up by
	// the Until it last wrote less LeaseClockSkew, before a worker whose
	// clock is ahead may take the lease over.
	LeaseClockSkew = time.Second

	// LeaseCallTimeout bounds each call a matcher worker makes to beat,
	// read the others' beats and take, renew or give back a lease. A call
	// held on a cut route then fails in time for the next round rather
	// than after the client's 5 s default. The shards' lease calls run
	// side by side, so one hung shard delays no other. A renewal that
	// misses it is tried again (twice a round) until the lease's Until
	// less LeaseClockSkew: one slow call does not give the shard up, and
	// an owner cut off stops consuming before another takes over. Far
	// above a healthy call (milliseconds).
	LeaseCallTimeout = LeaseRenew / 2

	// TakeoverBound is the takeover bound stated at WorkerTTL, counted
	// from a cut: WorkerTTL + LeaseRenew + 4 x LeaseCallTimeout.
	TakeoverBound = WorkerTTL + LeaseRenew + 4*LeaseCallTimeout

	// TakeoverBoundElecting is the bound when the cut took the leader of
	// the workers or leases stream with it (a NATS node cut off): the
	// other nodes elect a new leader after an election timeout, at most
	// NATSElectionTimeout after the last heartbeat they heard, before any
	// takeover round can be answered.
	TakeoverBoundElecting = NATSElectionTimeout + TakeoverBound

	// NATSElectionTimeout is the longest nats-server's raft waits without
	// a leader's heartbeat before it calls an election (its
	// maxElectionTimeoutDefault, 9 s; the shortest is 4 s). Not ours to
	// set: stated here so that the bounds above say what they rest on.
	NATSElectionTimeout = 9 * time.Second

	// ClaimCallTimeout bounds each call to the claims bucket (a create,
	// a read, a move or a delete of one claim). A call held on a cut
	// route fails then rather than after the client's 5 s default, and
	// its caller tries again (a ticket unacked comes back; a claim whose
	// create timed out is read again, never taken as lost). Far above a
	// healthy call, milliseconds even under load.
	ClaimCallTimeout = 2 * time.Second

	// ResultsCallTimeout bounds an allocator's wait for its results'
	// acks. A publish or ack lost in a cut would otherwise hold the
	// delivery until the client's async publish timeout (30 s): in #20's
	// sixteenth round, two matches' players heard their assignment 35 s
	// late so. Past it the handler tries again within its retries
	// (Config.RetryDeadline), and the delivery is nakked after them (the
	// results carry their message ids: stored once). Far above a healthy
	// batch of pipelined publishes, milliseconds even under load.
	ResultsCallTimeout = 3 * time.Second

	// AllocatorAckWait is how long a match delivered to an allocator
	// stays that allocator's without word from it. An allocator pulls
	// only the matches it has room to work on (Config.Concurrency), and
	// says it is still working on each every AllocatorProgressEvery
	// (up to AllocatorReservationStale), so a slow allocation (Kubernetes
	// API retries) keeps its match; one delivered to an allocator that
	// died or was cut off comes back to another after this. The push
	// consumer it replaced held such a match 30 s (#20's fifteenth round:
	// the chaos runs' late tickets waited between their match and its
	// game server, and one run's logs pointed at this wait).
	//
	// The consumer delivers a match without bound (MaxDeliver -1): each
	// delivery is allocated, given up (its players told, the match
	// dead-lettered, or its tickets queued again) and acked, or nakked
	// when it is not settled (NATS not answering, another request
	// allocating it, the allocator stopping, a give-up not stored), so a
	// match is never dropped silently, however often it was nakked.
	AllocatorAckWait = 5 * time.Second

	// AllocatorProgressEvery is how often an allocator tells the server it
	// is still working on a match: three times within AllocatorAckWait,
	// so one lost word does not hand the match to another.
	AllocatorProgressEvery = AllocatorAckWait / 3

	// AllocatorPullExpiry is how long an allocator's pull waits at the
	// server for matches, and the longest the consumer takes
	// (MaxRequestExpires): a pull made before a cut is delivered to for
	// at most this, each match it takes then coming back AllocatorAckWait
	// later.
	AllocatorPullExpiry = 2 * time.Second

	// AllocatorReservationStale is when a match's reservation (its
	// allocations record written pending, before the backend is asked)
	// is taken as its allocator's that died or was cut off, and another
	// request takes it over. An allocator's retries of one delivery stop
	// before (its Config.RetryDeadline must be shorter), and it stops
	// telling the server it works on a delivery then, so two requests ask
	// the backend for one match at once only when one backend call
	// outlasts it (the kube backend's timeout is the operator's to keep
	// below it).
	AllocatorReservationStale = 30 * time.Second

	// AllocatorBackendCall bounds one call of an allocator to its
	// backend for a match (the kube backend's calls to each cluster and
	// its settle): it ends well before the match's reservation goes
	// stale (AllocatorReservationStale), so no takeover of the match asks
	// the backend while the call may still allocate, and the backend has
	// seen what it allocated by then.
	AllocatorBackendCall = 12 * time.Second

	// AllocatorStopGrace is the least shutdown grace an allocator whose
	// backend calls may take their whole bound is given (the kube
	// backend's): a call in flight at the stop finishes (AllocatorBackendCall)
	// and its server is recorded and told (a few writes, the record's
	// tries within ClaimCallTimeout). One the process exits under keeps its match waiting
	// until its reservation goes stale.
	AllocatorStopGrace = AllocatorBackendCall + 3*time.Second

	// AllocatorMaxAckPending bounds matches in flight across allocators.
	AllocatorMaxAckPending = 4096

	// TicketRecordTTL is how long a ticket record stays in the tickets
	// bucket: a quarter of an hour less than its claim (RecordTTL), which
	// is written when the ticket is decided, after the record (or, its
	// put retried, within seconds before it). A record that outlived its
	// claim read as a ticket still queued: a decided ticket's event
	// stream expired it again, and a repeat of its keyed POST queued it
	// again, a second outcome for its players.
	TicketRecordTTL = TicketMaxAge + ClaimMargin/2

	// ClaimMargin keeps a claim past the last possible redelivery of its
	// ticket.
	ClaimMargin = 30 * time.Minute

	// RecordTTL is how long the per-match and per-ticket records live
	// after their last write (claims, matches, allocation records,
	// players, room matches): as long as a claim must, TicketMaxAge and
	// ClaimMargin. An open room's are written again to outlive it.
	RecordTTL = TicketMaxAge + ClaimMargin

	// UnsentGrace is how long a match may stay decided and unsent after
	// it was stored (its claims, or its record) before a frontend's expiry that meets its
	// claim publishes the ticket again (Publisher.TicketForUnsent). A
	// live matcher sends its own within seconds of NATS answering (its
	// sweep, or its outbox after a move), so a copy before then is work
	// for nothing; past it, the matcher that decided it is gone or cut
	// off, and its tickets may be too.
	UnsentGrace = 30 * time.Second

	// CapacityTTL drops the capacity report of an allocator that stopped
	// reporting: a frontend then treats the region as unknown, not full.
	CapacityTTL = time.Minute
)

// recordsUncapped is the byte limit of the buckets that keep one record per
// ticket or match for a fixed time (ticket records, claims, match records,
// allocation records, live tickets by player): none. Their size follows
// the rate: about 5.6 MB per sustained ticket a second (315 B of ticket
// record for 75 minutes, 157 B of claim, 252 B of match record, 96 B of
// allocation record and 271 B of live ticket per player for 1.5 h,
// measured when every match had a record), so about 11 GB at 2,000
// tickets/s. Since a small match travels in its claims (HeaderMatch),
// a 1v1's claim carries its match (530 B, computed for the load tool's
// tickets) and it has no record: about 300 B more a ticket, 1.6 MB more
// per ticket a second; its seal (HeaderMatchSeal: 68 B of header a
// claim) 0.4 MB more; so about 7.6 MB, 15 GB at 2,000 1v1 tickets/s (a
// 2v2's four claims carrying 900 B each, about twice that more). A byte
// cap below that stops the system after a while at a steady rate: a
// full bucket refuses writes, and with the 1 GiB cap they had, the match
// records would fill in about 35 minutes at 2,000 tickets/s, after which
// no match can be formed. Without one, only the JetStream server's storage, which the
// operator sizes, limits them.
// Their TTLs cannot be cut short instead: a claim must outlive every copy
// of its ticket.
const recordsUncapped = -1

// ticketsMsgSize is the tickets stream's message size limit: none but the
// server's max payload (see Streams).
const ticketsMsgSize = -1
