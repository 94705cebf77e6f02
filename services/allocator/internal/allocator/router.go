package allocator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
)

// boundParts are the parts Bind builds on the buckets it binds: the
// allocations records, the claims and the rooms.
type boundParts struct {
	recs   *records
	claims *events.Claims
	rooms  *rooms
}

// Bind binds the allocator to its buckets, and checks its consumer is
// there to pull from, waiting out NATS silent meanwhile (a restart
// during a partition: service.Retry) instead of ending. The process says
// it is ready once Bind returns; Run calls it if it was not called.
func (a *Allocator) Bind(ctx context.Context) error {
	if a.bound != nil {
		return nil
	}
	// A backend that shows its rooms' requests serves backfill; with one
	// that does not, every room to fill counts as gone.
	src, _ := a.backend.(BackfillSource)
	return service.Retry(ctx, a.js.Conn(), a.log, "bind the buckets", func(ctx context.Context) error {
		kv, err := a.js.KeyValue(ctx, a.subj.AllocationsBucket())
		if err != nil {
			return fmt.Errorf("allocations bucket: %w", err)
		}
		claims, err := events.NewClaims(ctx, a.js, a.subj)
		if err != nil {
			return err
		}
		leader, err := events.LeaderGets(a.js, kv)
		if err != nil {
			return err
		}
		recs := &records{kv: kv, leader: leader, backend: a.backend, log: a.log, now: time.Now, unrecorded: &unrecorded{}, unasked: &unasked{}, reconciled: a.met.reconciled}
		rs, err := openRooms(ctx, a.js, a.subj, src, recs, a.cfg.Backfill)
		if err != nil {
			return err
		}
		if _, err := a.js.Consumer(ctx, a.subj.AllocationsStream(), events.ConsumerAllocator); err != nil {
			return fmt.Errorf("consumer %s: %w", events.ConsumerAllocator, err)
		}
		a.bound = &boundParts{recs: recs, claims: claims, rooms: rs}
		return nil
	})
}

// Run serves allocation requests until ctx ends; Routing is closed once
// it takes them.
func (a *Allocator) Run(ctx context.Context) error {
	if err := a.Bind(ctx); err != nil {
		return err
	}
	recs, claims, rs := a.bound.recs, a.bound.claims, a.bound.rooms
	// The records' reconciling lives as long as Run, which waits for it.
	ctx, cancel := context.WithCancel(ctx)
	reconciled := make(chan struct{})
	go func() {
		defer close(reconciled)
		recs.reconcile(ctx)
	}()
	defer func() {
		cancel()
		<-reconciled
	}()
	pub := events.NewPublisher(a.js, a.subj)
	fail := &failure{records: recs, pub: pub, claims: claims, requeue: a.cfg.Requeue, met: a.met, log: a.log, now: time.Now}
	as := &assigner{records: recs, rooms: rs, requeue: fail.requeueBackfill,
		signer: a.signer, pub: pub, met: a.met, tokenTTL: a.cfg.TokenTTL, log: a.log, now: time.Now}

	// The router's start looks the consumer up again, a moment after
	// Bind found it, and pulls: NATS lost in between fails the start,
	// which is waited out as Bind's wait is. Any other failure (a
	// consumer that is no pull consumer, a pull refused) ends Run: no
	// wait mends it. A router once started is not restarted: it returns
	// only when ctx ends.
	return service.Retry(ctx, a.js.Conn(), a.log, "pull the allocation requests", func(ctx context.Context) error {
		err := a.route(ctx, as, fail)
		// The consumer gone (deleted, to be made again by provisioning)
		// is waited out as NATS lost is; and a stop is no failure.
		if err != nil && ctx.Err() == nil && !unavailable(err) && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("%w (%w)", err, service.ErrPermanent)
		}
		return err
	})
}

// Routing is closed once Run's router takes allocation requests: the
// allocator is ready then, not when bound (Bind).
func (a *Allocator) Routing() <-chan struct{} { return a.routing }

// Refused says whether the server refuses the allocator's pulls, for
// want of a permission (a configuration reloaded without it), since the
// last pull it took: the allocator allocates nothing then, and is not
// ready. At start-up such a refusal ends Run instead.
func (a *Allocator) Refused() bool { return a.refused.Load() }

// route runs a router of the allocation requests until ctx ends,
// handling each with as and giving up, after its retries, through fail;
// Routing is closed once it runs. Its context is its own, ended when it
// returns, which ends its pulls (the matches pulled and not settled come
// back after the consumer's AckWait).
func (a *Allocator) route(ctx context.Context, as *assigner, fail *failure) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cons, err := a.js.Consumer(ctx, a.subj.AllocationsStream(), events.ConsumerAllocator)
	if err != nil {
		// A push consumer (an older topology's, until the upgrade's
		// provisioning remakes it) is no pull consumer: Run ends, and
		// the process restarted waits for the provisioning
		// (service.WaitForTopology counts it missing).
		return fmt.Errorf("consumer %s: %w", events.ConsumerAllocator, err)
	}
	p := newPuller(cons, a.nc, a.cfg, a.log)
	p.refused = &a.refused
	router, err := a.router(as, fail, p.out)
	if err != nil {
		return err
	}
	// The server drops a pull the allocator's user may not make, and says
	// so apart: an allocator whose user may not take the requests would
	// be ready and allocate nothing. The first pull is made here and the
	// connection flushed, so the refusal, if any, has come. Permanent
	// (not NATS lost): Run ends.
	before := a.nc.LastError()
	first, held, end, err := p.pull(ctx)
	if err != nil {
		return fmt.Errorf("pull from consumer %s: %w", events.ConsumerAllocator, err)
	}
	err = a.nc.FlushTimeout(flushWait)
	if last := a.nc.LastError(); err == nil && last != before && natsconn.RequestRefused(last) {
		err = last
	}
	if err != nil {
		// What the first pull brings meanwhile is nakked, to go to
		// another allocator at once.
		cancel()
		go p.run(ctx, first, held, end)
		return fmt.Errorf("pull from consumer %s: %w", events.ConsumerAllocator, err)
	}
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		p.run(ctx, first, held, end)
	}()
	go func() {
		select {
		case <-router.Running():
			a.routed.Do(func() { close(a.routing) })
		case <-ctx.Done():
		}
	}()
	err = router.Run(ctx)
	cancel()
	<-pulled // every match pulled settled, or left to come back
	if err != nil {
		// Wrapped: watermill's errors print their stack with %+v, as
		// slog's text format writes them; a wrapping does not.
		return fmt.Errorf("route allocation requests: %w", err)
	}
	return nil
}

// router is the router of the matches in, each handled by as and given
// up, after its retries, through fail.
func (a *Allocator) router(as *assigner, fail *failure, in <-chan *message.Message) (*message.Router, error) {
	wlog := watermill.NewSlogLogger(a.log)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: a.cfg.CloseTimeout}, wlog)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:      20,
		InitialInterval: 100 * time.Millisecond,
		MaxInterval:     2 * time.Second,
		Multiplier:      2,
		MaxElapsedTime:  a.cfg.RetryDeadline,
		Logger:          wlog,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !isPermanent(p.Err) },
		OnRetryHook:     func(int, time.Duration) { a.met.retries.Inc() },
	}
	// Order: the outermost middleware sees what is left after the inner
	// ones; giveUp turns a failure that survived every retry into results
	// and a dead letter, so the router only ever acks; leaveUnasked sees a
	// delivery whose every try ended.
	router.AddMiddleware(middleware.CorrelationID, fail.giveUp, as.records.leaveUnasked, retry.Middleware, middleware.Recoverer)
	router.AddConsumerHandler("allocate", a.subj.AllAllocations(), subscribed(in), as.handle)
	return router, nil
}

// flushWait bounds the flush that asks the server whether it took the
// first pull; past it, NATS did not answer, and the start is tried again.
const flushWait = 5 * time.Second

// subscribed is the puller's channel, as the router's subscriber: it
// hands the router the matches pulled, and leaves ending the pulls to the
// context they were made with.
type subscribed <-chan *message.Message

func (s subscribed) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	return s, nil
}
func (subscribed) Close() error { return nil }

// The metadata unmarshal gives a match's message: its subject, and, from
// its JetStream metadata, its stream sequence (its dead letter's id); and
// it marks the message a delivery of its own (newDelivery, delivery.go).
const (
	metaSubject   = "nats_subject"
	metaStreamSeq = "nats_stream_seq"
)

// unmarshal turns a delivery into a watermill message, and never fails:
// validation happens in the handler, where a bad match is dead-lettered
// with its reason (a message dropped unacked instead would come back
// forever).
func unmarshal(m jetstream.Msg) *message.Message {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	if id == "" {
		id = watermill.NewUUID()
	}
	msg := message.NewMessage(id, m.Data())
	for k, v := range m.Headers() {
		if len(v) > 0 {
			msg.Metadata.Set(k, v[0])
		}
	}
	msg.Metadata.Set(metaSubject, m.Subject())
	newDelivery(msg) // after the headers: none of them names the delivery
	if md, err := m.Metadata(); err == nil {
		msg.Metadata.Set(metaStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	}
	return msg
}
