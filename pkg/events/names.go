package events

// Base names; [Subjects] adds the deployment prefix.
const (
	streamTickets     = "TICKETS"
	streamAllocations = "ALLOCATIONS"
	streamResults     = "RESULTS"
	streamDeadLetter  = "DEADLETTER"
	streamOffers      = "OFFERS"
	streamBackfills   = "BACKFILLS"
	bucketTickets     = "tickets"
	bucketClaims      = "claims"
	bucketCapacity    = "capacity"
	bucketWorkers     = "workers"
	bucketLeases      = "leases"
	bucketAllocations = "allocations"
	bucketMatches     = "matches"
	bucketPlayers     = "players"
	bucketQueue       = "queue"
	bucketRoomMatches = "roommatches"
)

// Consumer names. They live inside their stream, so they need no prefix.
const (
	// legacyIntakeConsumer was the matchers' shared intake on the tickets
	// stream (every subject), which copied each ticket into the POOL
	// stream of those versions (the stream of visitors, now OFFERS).
	// Shards now consume their ticket subjects directly; Provision deletes
	// it, since a work-queue stream refuses consumers whose subjects
	// overlap.
	legacyIntakeConsumer = "matcher"
	// ConsumerAllocator is the allocators' pull consumer on the
	// allocations stream, which they share.
	ConsumerAllocator = "allocator"
)

// TicketsStream holds tickets until a matcher acks them.
func (s Subjects) TicketsStream() string { return s.streamName(streamTickets) }

// AllocationsStream holds matches until an allocator acks them.
func (s Subjects) AllocationsStream() string { return s.streamName(streamAllocations) }

// OffersStream holds visitors: tickets a shard offers to another shard
// (the same tier of another region once their latency budget reaches it,
// or a neighbouring tier of its region once their skill window crosses
// the bound), one subject per shard, until that shard's owner acks them.
func (s Subjects) OffersStream() string { return s.streamName(streamOffers) }

// ShardConsumer is the durable consumer of one shard's ticket subject on
// the tickets stream. Only the worker holding the shard's lease consumes
// it: every ticket of a shard reaches that one worker, in one hop.
func ShardConsumer(region, tier string) string { return "tickets-" + region + "-" + tier }

// OfferConsumer is the durable consumer of one shard's visitors on the OFFERS
// stream, consumed by the same worker as [ShardConsumer].
func OfferConsumer(region, tier string) string { return "offers-" + region + "-" + tier }

// BackfillsStream holds the backfill requests of running rooms (see
// [Backfill]), one subject per shard, until that shard's owner fills them
// or lets them go.
func (s Subjects) BackfillsStream() string { return s.streamName(streamBackfills) }

// BackfillConsumer is the durable consumer of one shard's backfill
// requests on the BACKFILLS stream, consumed by the same worker as
// [ShardConsumer].
func BackfillConsumer(region, tier string) string { return "backfills-" + region + "-" + tier }

// WorkersBucket holds a heartbeat per live matcher worker.
func (s Subjects) WorkersBucket() string { return s.streamName(bucketWorkers) }

// LeasesBucket holds the lease of each shard: which worker owns it, until when.
func (s Subjects) LeasesBucket() string { return s.streamName(bucketLeases) }

// ResultsStream keeps the last results of every player.
func (s Subjects) ResultsStream() string { return s.streamName(streamResults) }

// DeadLetterStream keeps rejected messages for operators.
func (s Subjects) DeadLetterStream() string { return s.streamName(streamDeadLetter) }

// TicketsBucket is the key-value bucket of ticket records kept by the
// frontends (ticket id -> ticket), so any frontend instance can answer for a
// ticket another one created.
func (s Subjects) TicketsBucket() string { return s.streamName(bucketTickets) }

// ClaimsBucket decides each ticket's one outcome (see [Claims]).
func (s Subjects) ClaimsBucket() string { return s.streamName(bucketClaims) }

// AllocationsBucket records the game server each match got (match id ->
// server), so that a retried or redelivered request never allocates a
// second one.
func (s Subjects) AllocationsBucket() string { return s.streamName(bucketAllocations) }

// MatchesBucket keeps the record of a formed match (match id -> Match)
// too big for its claims to carry (HeaderMatch), whose room takes
// backfill, or formed with the matchers' -match-records,
// written before its tickets are claimed, so that if the matcher dies
// between claiming and publishing, another can decide the match it left;
// and
// each match's one decision ("<match id>.decided", see [Decisions]) and,
// once it was sent, that it was ("<match id>.sent", [Decisions.MarkSent]).
func (s Subjects) MatchesBucket() string { return s.streamName(bucketMatches) }

// RoomMatchesBucket keeps the match of each open room that accepts
// backfill (room id, its match id -> Match), copied from the matches
// bucket by the allocators and written again while the room is open: a
// room's backfill outlives its match's record (MatchesBucket).
func (s Subjects) RoomMatchesBucket() string { return s.streamName(bucketRoomMatches) }

// PlayersBucket maps each player id to that player's live ticket (see
// [Players]): one ticket per player may wait to be matched, whatever its
// region, tier or path.
func (s Subjects) PlayersBucket() string { return s.streamName(bucketPlayers) }

// CapacityBucket holds the latest [Capacity] per region.
func (s Subjects) CapacityBucket() string { return s.streamName(bucketCapacity) }

// QueueBucket holds the latest [QueueStats] per shard and mode ([QueueKey]).
func (s Subjects) QueueBucket() string { return s.streamName(bucketQueue) }
