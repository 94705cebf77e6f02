package events

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Topology is the set of streams, consumers and buckets of one deployment.
type Topology struct {
	Subjects Subjects
	// Regions and Tiers make the shards, three consumers each (tickets,
	// visitors and backfill requests); nil means the defaults.
	Regions Regions
	Tiers   Tiers
	// Replicas of every stream and bucket: 1 on a single server, 3 on a
	// cluster.
	Replicas int
	// MaxBytes per stream; 0 means 1 GiB. It caps the queues (tickets,
	// visitors, matches waiting for a server), the results and the dead
	// letters; not the record buckets, which their TTL bounds (see
	// recordsUncapped).
	MaxBytes int64
}

func (t Topology) replicas() int { return max(t.Replicas, 1) }

func (t Topology) maxBytes() int64 {
	if t.MaxBytes > 0 {
		return t.MaxBytes
	}
	return 1 << 30
}

// Streams declares the streams.
func (t Topology) Streams() []jetstream.StreamConfig {
	s := t.Subjects
	tickets := t.queue(s.TicketsStream(), "matchmaking tickets, one subject per region and tier", s.AllTickets())
	// No limit of its own: anything up to the server's max payload is
	// stored, and the matcher dead-letters a ticket over MaxPayloadBytes
	// with the reason. A stream limit would refuse it, and a core publish
	// (`nats pub`) never hears a refusal: the ticket would vanish with no
	// trace.
	tickets.MaxMsgSize = ticketsMsgSize

	// The ticket id and the region are the message id: a ticket offered
	// twice (a retried publish) is stored once.
	offers := t.queue(s.OffersStream(), "visitors: tickets offered to another region's shard, held by that shard's owner",
		s.AllOffers())
	// The request id is the message id: a request the allocator sees on
	// every poll is stored once.
	backfills := t.queue(s.BackfillsStream(), "backfill requests of running rooms, held by the owner of the shard that formed the room's match",
		s.AllBackfills())

	results := t.stream(s.ResultsStream(), "per-player results, the last few per player", s.AllResults())
	results.Retention = jetstream.LimitsPolicy
	// Old results are worth less than new ones: drop the oldest.
	results.Discard = jetstream.DiscardOld
	results.MaxAge = ResultMaxAge
	results.MaxMsgsPerSubject = ResultsPerPlayer
	// Direct get lets any replica answer "last result of player X".
	results.AllowDirect = true

	dead := t.stream(s.DeadLetterStream(), "messages rejected by a service, with the reason", s.AllDeadLetters())
	dead.Retention = jetstream.LimitsPolicy
	dead.Discard = jetstream.DiscardOld
	dead.MaxAge = DeadLetterMaxAge
	dead.MaxBytes = t.maxBytes() / 4
	// A dead letter carries the rejected payload (base64) and more;
	// NewDeadLetter cuts it to fit (MaxDeadLetterBytes).
	dead.MaxMsgSize = deadLetterMsgSize

	return []jetstream.StreamConfig{
		tickets,
		offers,
		backfills,
		t.queue(s.AllocationsStream(), "formed matches waiting for a game server", s.AllAllocations()),
		results,
		dead,
	}
}

// stream is what every stream shares. File storage, so a restart of the
// server loses nothing that was acknowledged; the duplicate window, since
// every publish carries a message id; the byte cap of the topology.
func (t Topology) stream(name, description, subjects string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: description,
		Subjects:    []string{subjects},
		MaxBytes:    t.maxBytes(),
		MaxMsgSize:  MaxPayloadBytes,
		Duplicates:  DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    t.replicas(),
	}
}

// queue is a stream of work waiting to be done: tickets, visitors,
// matches waiting for a game server.
func (t Topology) queue(name, description, subjects string) jetstream.StreamConfig {
	c := t.stream(name, description, subjects)
	// Work queue: a message is gone once its consumer acks it (a ticket
	// matched, expired or dead-lettered), so the stream holds exactly the
	// work still waiting.
	c.Retention = jetstream.WorkQueuePolicy
	// When full, refuse new messages rather than drop waiting ones: the
	// publisher sees the error (a player is told to retry).
	c.Discard = jetstream.DiscardNew
	c.MaxAge = TicketMaxAge
	return c
}

// StreamConsumer is a consumer declaration and the stream it belongs to.
type StreamConsumer struct {
	Stream string
	Config jetstream.ConsumerConfig
}

// Consumers declares the durable consumers.
func (t Topology) Consumers() []StreamConsumer {
	s := t.Subjects
	var out []StreamConsumer
	for _, sh := range t.Shards() {
		out = append(out,
			StreamConsumer{Stream: s.TicketsStream(), Config: held(ShardConsumer(sh.Region, sh.Tier),
				"the tickets of shard "+sh.String()+", consumed by its owner only", s.Ticket(sh.Region, sh.Tier))},
			StreamConsumer{Stream: s.OffersStream(), Config: held(OfferConsumer(sh.Region, sh.Tier),
				"the visitors of shard "+sh.String()+", consumed by its owner only", s.Offer(sh.Region, sh.Tier))},
			StreamConsumer{Stream: s.BackfillsStream(), Config: held(BackfillConsumer(sh.Region, sh.Tier),
				"the backfill requests of shard "+sh.String()+", consumed by its owner only", s.Backfill(sh.Region, sh.Tier))},
		)
	}
	return append(out, t.allocatorConsumer())
}

// PushAllocatorConsumer is the allocators' consumer as the versions
// before #20's sixteenth round declared it: a push consumer delivering on
// deliver.allocator to the queue group "allocator", AckWait 30 s. An
// upgrade's provisioning finds it and makes it again as the pull consumer
// (ensureConsumer); the tests of that upgrade make it with this.
func (t Topology) PushAllocatorConsumer() StreamConsumer {
	c := t.allocatorConsumer()
	c.Config.DeliverSubject, c.Config.DeliverGroup = t.Subjects.join("deliver", ConsumerAllocator), "allocator"
	c.Config.AckWait, c.Config.MaxRequestExpires = 30*time.Second, 0
	return c
}

// allocatorConsumer is the allocators' pull consumer, which they share.
func (t Topology) allocatorConsumer() StreamConsumer {
	s := t.Subjects
	return StreamConsumer{
		Stream: s.AllocationsStream(),
		Config: jetstream.ConsumerConfig{
			Durable:       ConsumerAllocator,
			Description:   "allocators find game servers for matches from here",
			FilterSubject: s.AllAllocations(),
			// A pull consumer: each allocator pulls what it has room
			// for, so none holds matches it is not working on.
			AckPolicy: jetstream.AckExplicitPolicy,
			AckWait:   AllocatorAckWait,
			// Unbounded: a match is delivered until an allocator
			// allocates it or gives it up, however often one died or
			// was cut off meanwhile (AllocatorAckWait).
			MaxDeliver:        -1,
			MaxAckPending:     AllocatorMaxAckPending,
			DeliverPolicy:     jetstream.DeliverAllPolicy,
			MaxRequestExpires: AllocatorPullExpiry,
		},
	}
}

// held is the consumer of a shard's tickets or visitors: its owner holds
// them unacked in its pool while they wait (see PoolAckWait).
func held(name, description, filter string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   description,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       PoolAckWait,
		MaxDeliver:    -1,
		MaxAckPending: PoolMaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// A pull made before a cut stops delivering within this.
		MaxRequestExpires: PoolMaxPullExpiry,
	}
}

// Buckets declares the key-value buckets.
func (t Topology) Buckets() []jetstream.KeyValueConfig {
	s := t.Subjects
	return []jetstream.KeyValueConfig{
		t.records(s.TicketsBucket(), "ticket records by ticket id and by idempotency key",
			TicketRecordTTL, MaxPayloadBytes),
		// A claim must outlive every copy of its ticket (TicketMaxAge in
		// the stream), or a late redelivery could be claimed again.
		// A match's claim may carry the match (HeaderMatch), which
		// counts against the size: at most MaxMatchCarried, with room
		// for its owner and the header's name.
		t.records(s.ClaimsBucket(), "the one outcome of each ticket (match:<id>, carrying a small match, cancelled, expired, superseded, failed); told.<ticket id>: that outcome told; backfill.<id>: the match filling a backfill request",
			RecordTTL, MaxMatchCarried+1<<10),
		// Old entries of workers long gone are dropped; liveness itself is
		// judged by the beat's time (WorkerTTL).
		t.bucket(s.WorkersBucket(), "matcher worker heartbeats: worker id -> last beat", time.Hour, 1024),
		t.bucket(s.LeasesBucket(), "shard leases: region.tier -> owner and expiry", 0, 1024),
		// Longer than any redelivery of an allocation request can come (the
		// request stream keeps them TicketMaxAge).
		t.records(s.AllocationsBucket(), "the game server of each allocated match: match id -> server",
			RecordTTL, 4096),
		// As long as the claims that point at them.
		t.records(s.MatchesBucket(), "each match's decision and sent mark; the record of a match too big for its claims to carry, whose room takes backfill, or formed with -match-records, written before its tickets are claimed",
			RecordTTL, MaxPayloadBytes),
		// As long as the matches, but written again while the room is open
		// (the allocators' refresher): a game may run for hours.
		t.records(s.RoomMatchesBucket(), "the match of each open room that accepts backfill, written again while the room is open",
			RecordTTL, MaxPayloadBytes),
		// As long as the claims: an entry outlives every copy of the ticket
		// it names (TicketMaxAge in the stream), so a late redelivery of a
		// superseded ticket still finds the newer one. Per ticket taken,
		// about one entry per player.
		t.records(s.PlayersBucket(), "each player's live ticket: player id -> the one ticket of theirs that may be matched",
			RecordTTL, 4096),
		t.bucket(s.CapacityBucket(), "game-server capacity per region, from the allocators", CapacityTTL, 4096),
		// History 1 and a short TTL: the latest figures only, gone a minute
		// after their shard's owner stopped writing them.
		t.bucket(s.QueueBucket(), "queue figures per shard and mode (expected wait), from the matchers", QueueStatsTTL, 1024),
		// No TTL: a drain holds until an operator resumes the shard.
		t.bucket(s.DrainsBucket(), "drained shards: region.tier -> reason, who and when, from the operators", 0, drainValueSize),
	}
}

// bucket is a bucket of the latest value per key (no history), in file
// storage; ttl 0 keeps values until they are deleted.
func (t Topology) bucket(name, description string, ttl time.Duration, maxValueSize int32) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       name,
		Description:  description,
		History:      1,
		TTL:          ttl,
		MaxValueSize: maxValueSize,
		Storage:      jetstream.FileStorage,
		Replicas:     t.replicas(),
	}
}

// records is a bucket of one record per ticket or match, which only its
// TTL bounds (see recordsUncapped).
func (t Topology) records(name, description string, ttl time.Duration, maxValueSize int32) jetstream.KeyValueConfig {
	b := t.bucket(name, description, ttl, maxValueSize)
	b.MaxBytes = recordsUncapped
	return b
}
