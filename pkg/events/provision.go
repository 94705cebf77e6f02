package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

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
	// visitor)
	// unacked: as long as a ticket can live. A live owner never needs to
	// say it is still working (no InProgress traffic for a million waiting
	// tickets); when an owner dies, the worker that takes its shard resets
	// the consumer, which redelivers every unacked ticket at once.
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

// Topology is the set of streams, consumers and buckets of one deployment.
type Topology struct {
	Subjects Subjects
	// Regions and Tiers make the shards, one pool consumer each; nil means
	// the defaults.
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
// formed. Without one, only
// the JetStream server's storage, which the operator sizes, limits them.
// Their TTLs cannot be cut short instead: a claim must outlive every copy
// of its ticket.
const recordsUncapped = -1

// ticketsMsgSize is the tickets stream's message size limit: none but the
// server's max payload (see Streams).
const ticketsMsgSize = -1

func (t Topology) replicas() int { return max(t.Replicas, 1) }

// Shard is one region and tier: the unit of matching and of ownership.
type Shard struct{ Region, Tier string }

func (s Shard) String() string { return s.Region + "." + s.Tier }

// Shards lists every shard of the topology.
func (t Topology) Shards() []Shard {
	regions, tiers := t.Regions, t.Tiers
	if len(regions) == 0 {
		regions = DefaultRegions
	}
	if len(tiers) == 0 {
		tiers = DefaultTiers
	}
	var out []Shard
	for _, r := range regions {
		for _, tr := range tiers {
			out = append(out, Shard{Region: r, Tier: tr.Name})
		}
	}
	return out
}

func (t Topology) maxBytes() int64 {
	if t.MaxBytes > 0 {
		return t.MaxBytes
	}
	return 1 << 30
}

// Streams declares the streams. All use file storage so a restart of the
// server loses nothing that was acknowledged.
func (t Topology) Streams() []jetstream.StreamConfig {
	s := t.Subjects
	return []jetstream.StreamConfig{
		{
			Name:        s.TicketsStream(),
			Description: "matchmaking tickets, one subject per region and tier",
			Subjects:    []string{s.AllTickets()},
			// Work queue: a ticket is gone once a matcher acks it (matched,
			// expired or dead-lettered), so the stream holds exactly the
			// tickets still waiting.
			Retention: jetstream.WorkQueuePolicy,
			// When full, refuse new tickets rather than drop waiting ones:
			// the publisher sees the error and the player is told to retry.
			Discard:  jetstream.DiscardNew,
			MaxAge:   TicketMaxAge,
			MaxBytes: t.maxBytes(),
			// No limit of its own: anything up to the server's max payload
			// is stored, and the matcher dead-letters a ticket over
			// MaxPayloadBytes with the reason. A stream limit would refuse
			// it, and a core publish (`nats pub`) never hears a refusal:
			// the ticket would vanish with no trace.
			MaxMsgSize: ticketsMsgSize,
			Duplicates: DuplicateWindow,
			Storage:    jetstream.FileStorage,
			Replicas:   t.replicas(),
		},
		{
			Name:        s.OfferStream(),
			Description: "visitors: tickets offered to another region's shard, held by that shard's owner",
			Subjects:    []string{s.join(rootOffer, ">")},
			Retention:   jetstream.WorkQueuePolicy,
			Discard:     jetstream.DiscardNew,
			MaxAge:      TicketMaxAge,
			MaxBytes:    t.maxBytes(),
			MaxMsgSize:  MaxPayloadBytes,
			// The ticket id and the region are the message id: a ticket
			// offered twice (a retried publish) is pooled once.
			Duplicates: DuplicateWindow,
			Storage:    jetstream.FileStorage,
			Replicas:   t.replicas(),
		},
		{
			Name:        s.AllocationsStream(),
			Description: "formed matches waiting for a game server",
			Subjects:    []string{s.AllAllocations()},
			Retention:   jetstream.WorkQueuePolicy,
			Discard:     jetstream.DiscardNew,
			MaxAge:      TicketMaxAge,
			MaxBytes:    t.maxBytes(),
			MaxMsgSize:  MaxPayloadBytes,
			Duplicates:  DuplicateWindow,
			Storage:     jetstream.FileStorage,
			Replicas:    t.replicas(),
		},
		{
			Name:        s.ResultsStream(),
			Description: "per-player results, the last few per player",
			Subjects:    []string{s.AllResults()},
			Retention:   jetstream.LimitsPolicy,
			// Old results are worth less than new ones: drop the oldest.
			Discard:           jetstream.DiscardOld,
			MaxAge:            ResultMaxAge,
			MaxMsgsPerSubject: ResultsPerPlayer,
			MaxBytes:          t.maxBytes(),
			MaxMsgSize:        MaxPayloadBytes,
			Duplicates:        DuplicateWindow,
			Storage:           jetstream.FileStorage,
			Replicas:          t.replicas(),
			// Direct get lets any replica answer "last result of player X".
			AllowDirect: true,
		},
		{
			Name:        s.DeadLetterStream(),
			Description: "messages rejected by a service, with the reason",
			Subjects:    []string{s.AllDeadLetters()},
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      DeadLetterMaxAge,
			MaxBytes:    t.maxBytes() / 4,
			// A dead letter carries the rejected payload (base64) and more;
			// NewDeadLetter cuts it to fit (MaxDeadLetterBytes).
			MaxMsgSize: deadLetterMsgSize,
			Duplicates: DuplicateWindow,
			Storage:    jetstream.FileStorage,
			Replicas:   t.replicas(),
		},
	}
}

// StreamConsumer is a consumer declaration and the stream it belongs to.
type StreamConsumer struct {
	Stream string
	Config jetstream.ConsumerConfig
}

// Consumers declares the durable consumers.
func (t Topology) Consumers() []StreamConsumer {
	s := t.Subjects
	// A shard's owner holds its tickets and visitors unacked while they
	// wait (see PoolAckWait).
	held := func(name, desc, filter string) jetstream.ConsumerConfig {
		return jetstream.ConsumerConfig{
			Durable:       name,
			Description:   desc,
			FilterSubject: filter,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       PoolAckWait,
			MaxDeliver:    -1,
			MaxAckPending: PoolMaxAckPending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		}
	}
	var shards []StreamConsumer
	for _, sh := range t.Shards() {
		shards = append(shards,
			StreamConsumer{Stream: s.TicketsStream(), Config: held(ShardConsumer(sh.Region, sh.Tier),
				"the tickets of shard "+sh.String()+", consumed by its owner only", s.Ticket(sh.Region, sh.Tier))},
			StreamConsumer{Stream: s.OfferStream(), Config: held(OfferConsumer(sh.Region, sh.Tier),
				"the visitors of shard "+sh.String()+", consumed by its owner only", s.Offer(sh.Region, sh.Tier))},
		)
	}
	return append(shards, []StreamConsumer{
		{
			Stream: s.AllocationsStream(),
			Config: jetstream.ConsumerConfig{
				Durable:       ConsumerAllocator,
				Description:   "allocators find game servers for matches from here",
				FilterSubject: s.AllAllocations(),
				// A push consumer with a deliver group: watermill-nats binds
				// to it with a queue subscription, so allocators share it.
				DeliverSubject: s.AllocatorDeliverSubject(),
				DeliverGroup:   AllocatorDeliverGroup,
				AckPolicy:      jetstream.AckExplicitPolicy,
				AckWait:        AllocatorAckWait,
				MaxDeliver:     AllocatorMaxDeliver,
				MaxAckPending:  AllocatorMaxAckPending,
				DeliverPolicy:  jetstream.DeliverAllPolicy,
			},
		},
	}...)
}

// Buckets declares the key-value buckets.
func (t Topology) Buckets() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{
			Bucket:       t.Subjects.TicketsBucket(),
			Description:  "ticket records by ticket id and by idempotency key",
			History:      1,
			TTL:          TicketRecordTTL,
			MaxBytes:     recordsUncapped,
			MaxValueSize: MaxPayloadBytes,
			Storage:      jetstream.FileStorage,
			Replicas:     t.replicas(),
		},
		{
			Bucket:      t.Subjects.ClaimsBucket(),
			Description: "the one outcome of each ticket: match:<id>, cancelled, expired, superseded",
			History:     1,
			// A claim must outlive every copy of its ticket (TicketMaxAge in
			// the stream), or a late redelivery could be claimed again.
			TTL:          TicketMaxAge + ClaimMargin,
			MaxBytes:     recordsUncapped,
			MaxValueSize: 256,
			Storage:      jetstream.FileStorage,
			Replicas:     t.replicas(),
		},
		{
			Bucket:      t.Subjects.WorkersBucket(),
			Description: "matcher worker heartbeats: worker id -> last beat",
			History:     1,
			// Old entries of workers long gone are dropped; liveness itself
			// is judged by the beat's time (WorkerTTL).
			TTL:          time.Hour,
			MaxValueSize: 1024,
			Storage:      jetstream.FileStorage,
			Replicas:     t.replicas(),
		},
		{
			Bucket:       t.Subjects.LeasesBucket(),
			Description:  "shard leases: region.tier -> owner and expiry",
			History:      1,
			MaxValueSize: 1024,
			Storage:      jetstream.FileStorage,
			Replicas:     t.replicas(),
		},
		{
			Bucket:      t.Subjects.AllocationsBucket(),
			Description: "the game server of each allocated match: match id -> server",
			History:     1,
			// Longer than any redelivery of an allocation request can come
			// (the request stream keeps them TicketMaxAge).
			TTL:          TicketMaxAge + ClaimMargin,
			MaxBytes:     recordsUncapped,
			MaxValueSize: 4096,
			Storage:      jetstream.FileStorage,
			Replicas:     t.replicas(),
		},
		{
			Bucket:      t.Subjects.MatchesBucket(),
			Description: "formed matches, written before their tickets are claimed",
			History:     1,
			// As long as the claims that point at them.
			TTL:          TicketMaxAge + ClaimMargin,
			MaxBytes:     recordsUncapped,
			MaxValueSize: MaxPayloadBytes,
			Storage:      jetstream.FileStorage,
			Replicas:     t.replicas(),
		},
		{
			Bucket:      t.Subjects.PlayersBucket(),
			Description: "each player's live ticket: player id -> the one ticket of theirs that may be matched",
			History:     1,
			// As long as the claims: an entry outlives every copy of the
			// ticket it names (TicketMaxAge in the stream), so a late
			// redelivery of a superseded ticket still finds the newer one.
			// Per ticket taken, about one entry per player.
			TTL:          TicketMaxAge + ClaimMargin,
			MaxBytes:     recordsUncapped,
			MaxValueSize: 4096,
			Storage:      jetstream.FileStorage,
			Replicas:     t.replicas(),
		},
		{
			Bucket:       t.Subjects.CapacityBucket(),
			Description:  "game-server capacity per region, from the allocators",
			History:      1,
			TTL:          CapacityTTL,
			MaxValueSize: 4096,
			Storage:      jetstream.FileStorage,
			Replicas:     t.replicas(),
		},
	}
}

// Provision creates every stream, consumer and bucket of the topology that
// is missing, and updates those whose configuration differs. It is
// idempotent: every service calls it once at start-up, and running it
// against a provisioned server changes nothing; in particular it sends no
// update for an unchanged stream, so services starting together do not
// update a stream while another creates a consumer on it (which races
// inside nats-server 2.15). A change that JetStream cannot apply in place
// (a stream's retention, say) fails with the stream named, rather than
// deleting data.
func Provision(ctx context.Context, js jetstream.JetStream, t Topology) error {
	if err := ValidatePrefix(t.Subjects.Prefix); err != nil {
		return err
	}
	for _, cfg := range t.Streams() {
		if err := ensureStream(ctx, js, cfg); err != nil {
			return fmt.Errorf("provision stream %s: %w", cfg.Name, err)
		}
	}
	if err := dropLegacyIntake(ctx, js, t.Subjects); err != nil {
		return err
	}
	for _, c := range t.Consumers() {
		if err := ensureConsumer(ctx, js, c); err != nil {
			return fmt.Errorf("provision consumer %s on %s: %w", c.Config.Durable, c.Stream, err)
		}
	}
	for _, b := range t.Buckets() {
		if err := ensureBucket(ctx, js, b); err != nil {
			return fmt.Errorf("provision bucket %s: %w", b.Bucket, err)
		}
	}
	return nil
}

// dropLegacyIntake deletes the shared intake consumer of earlier versions,
// if it is there: it covers every ticket subject, and a work-queue stream
// refuses the shard consumers while it exists. Its unacked tickets stay in
// the stream and go to the shard consumers.
func dropLegacyIntake(ctx context.Context, js jetstream.JetStream, s Subjects) error {
	_, err := js.Consumer(ctx, s.TicketsStream(), legacyIntakeConsumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err == nil {
		err = js.DeleteConsumer(ctx, s.TicketsStream(), legacyIntakeConsumer)
	}
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete the intake consumer %q of an earlier version on %s (or: nats consumer rm %s %s): %w",
			legacyIntakeConsumer, s.TicketsStream(), s.TicketsStream(), legacyIntakeConsumer, err)
	}
	return nil
}

// unlimited reads the server's -1 and our 0 as the same "no limit".
func unlimited[T int | int64 | int32](v T) T {
	if v <= 0 {
		return -1
	}
	return v
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return err
		}
		st, err = js.Stream(ctx, want.Name) // created by another service just now
	}
	if err != nil {
		return err
	}
	if sameStream(st.CachedInfo().Config, want) {
		return nil
	}
	_, err = js.UpdateStream(ctx, want)
	return err
}

func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Description == want.Description &&
		have.Retention == want.Retention && have.Discard == want.Discard && have.Storage == want.Storage &&
		have.MaxAge == want.MaxAge && unlimited(have.MaxBytes) == unlimited(want.MaxBytes) &&
		unlimited(have.MaxMsgs) == unlimited(want.MaxMsgs) && unlimited(have.MaxMsgSize) == unlimited(want.MaxMsgSize) &&
		unlimited(have.MaxMsgsPerSubject) == unlimited(want.MaxMsgsPerSubject) &&
		have.Duplicates == want.Duplicates && max(have.Replicas, 1) == max(want.Replicas, 1) && have.AllowDirect == want.AllowDirect
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, c StreamConsumer) error {
	push := c.Config.DeliverSubject != ""
	info := func() (*jetstream.ConsumerInfo, error) {
		if push {
			pc, err := js.PushConsumer(ctx, c.Stream, c.Config.Durable)
			if err != nil {
				return nil, err
			}
			return pc.CachedInfo(), nil
		}
		pc, err := js.Consumer(ctx, c.Stream, c.Config.Durable)
		if err != nil {
			return nil, err
		}
		return pc.CachedInfo(), nil
	}
	have, err := info()
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if push {
			_, err = js.CreatePushConsumer(ctx, c.Stream, c.Config)
		} else {
			_, err = js.CreateConsumer(ctx, c.Stream, c.Config)
		}
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return err
		}
		have, err = info() // created by another service just now
	}
	if err != nil {
		return err
	}
	if sameConsumer(have.Config, c.Config) {
		return nil
	}
	if push {
		_, err = js.UpdatePushConsumer(ctx, c.Stream, c.Config)
	} else {
		_, err = js.UpdateConsumer(ctx, c.Stream, c.Config)
	}
	return err
}

func sameConsumer(have, want jetstream.ConsumerConfig) bool {
	return have.Description == want.Description && have.FilterSubject == want.FilterSubject &&
		have.AckPolicy == want.AckPolicy && have.AckWait == want.AckWait && have.DeliverPolicy == want.DeliverPolicy &&
		unlimited(have.MaxDeliver) == unlimited(want.MaxDeliver) && unlimited(have.MaxAckPending) == unlimited(want.MaxAckPending) &&
		have.DeliverSubject == want.DeliverSubject && have.DeliverGroup == want.DeliverGroup
}

func ensureBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) error {
	_, err := js.KeyValue(ctx, want.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = js.CreateKeyValue(ctx, want)
		if !errors.Is(err, jetstream.ErrBucketExists) {
			return err
		}
	} else if err != nil {
		return err
	}
	// A bucket is a stream: compare what the bucket's settings became.
	st, err := js.Stream(ctx, "KV_"+want.Bucket)
	if err != nil {
		return err
	}
	have := st.CachedInfo().Config
	if have.Description == want.Description && have.MaxAge == want.TTL && have.MaxMsgsPerSubject == int64(max(want.History, 1)) &&
		unlimited(have.MaxBytes) == unlimited(want.MaxBytes) && unlimited(have.MaxMsgSize) == unlimited(want.MaxValueSize) &&
		max(have.Replicas, 1) == max(want.Replicas, 1) && have.Storage == want.Storage {
		return nil
	}
	_, err = js.UpdateKeyValue(ctx, want)
	return err
}
