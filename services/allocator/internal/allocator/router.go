package allocator

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
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
// there to subscribe to, waiting out NATS silent meanwhile (a restart
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
		recs := &records{kv: kv, backend: a.backend, log: a.log, now: time.Now}
		rs, err := openRooms(ctx, a.js, a.subj, src, recs)
		if err != nil {
			return err
		}
		if _, err := a.js.PushConsumer(ctx, a.subj.AllocationsStream(), events.ConsumerAllocator); err != nil {
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
	pub := events.NewPublisher(a.js, a.subj)
	fail := &failure{records: recs, pub: pub, claims: claims, requeue: a.cfg.Requeue, met: a.met, log: a.log, now: time.Now}
	as := &assigner{records: recs, rooms: rs, requeue: fail.requeueBackfill,
		signer: a.signer, pub: pub, met: a.met, tokenTTL: a.cfg.TokenTTL, log: a.log, now: time.Now}

	// The router's subscriptions look the consumer up again, a moment
	// after Bind found it: NATS lost in between fails the router's start,
	// which is waited out as Bind's wait is. Any other failure (a
	// consumer whose deliver group is not the allocators') ends Run: no
	// wait mends it. A router once started is not restarted: it returns
	// only when ctx ends.
	return service.Retry(ctx, a.js.Conn(), a.log, "subscribe to the allocation requests", func(ctx context.Context) error {
		err := a.route(ctx, as, fail)
		if err != nil && !unavailable(err) {
			return fmt.Errorf("%w (%w)", err, service.ErrPermanent)
		}
		return err
	})
}

// Routing is closed once Run's router takes allocation requests: the
// allocator is ready then, not when bound (Bind).
func (a *Allocator) Routing() <-chan struct{} { return a.routing }

// route runs a router of the allocation requests until ctx ends,
// handling each with as and giving up, after its retries, through fail;
// Routing is closed once it runs. Its context is its own, ended when it
// returns, which ends its subscription: one made in part before a
// failure unsubscribes what it made (the messages those were pushed come
// back after AckWait).
func (a *Allocator) route(ctx context.Context, as *assigner, fail *failure) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wlog := watermill.NewSlogLogger(a.log)
	sub, err := a.subscriber(wlog)
	if err != nil {
		return fmt.Errorf("allocation subscriber: %w", err)
	}
	// Subscribed here, not by the router: a router whose subscribe
	// fails leaves a goroutine waiting for its handler for good (watermill
	// counts the handler before it subscribes), one per failed attempt;
	// and a router that stops closes the subscriber it was given, which
	// drains the allocator's one NATS connection. The subscription ends
	// with ctx.
	before := a.nc.LastError()
	msgs, err := sub.Subscribe(ctx, a.subj.AllAllocations())
	if err != nil {
		// Wrapped: watermill's errors print their stack with %+v, as
		// slog's text format writes them; a wrapping does not.
		return fmt.Errorf("subscribe to consumer %s: %w", events.ConsumerAllocator, err)
	}
	// The server answers a subscription it refuses before the flush: an
	// allocator whose user may not take the requests would be ready and
	// allocate nothing. Permanent (not NATS lost): Run ends.
	if err := a.nc.FlushTimeout(flushWait); err != nil {
		return fmt.Errorf("subscribe to consumer %s: %w", events.ConsumerAllocator, err)
	}
	if last := a.nc.LastError(); last != before && natsconn.SubscriptionRefused(last, a.subj.AllocatorDeliverSubject()) {
		return fmt.Errorf("subscribe to consumer %s: %w", events.ConsumerAllocator, last)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: a.cfg.CloseTimeout}, wlog)
	if err != nil {
		return fmt.Errorf("router: %w", err)
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
	// and a dead letter, so the router only ever acks.
	router.AddMiddleware(middleware.CorrelationID, fail.giveUp, retry.Middleware, middleware.Recoverer)
	router.AddConsumerHandler("allocate", a.subj.AllAllocations(), subscribed(msgs), as.handle)
	go func() {
		select {
		case <-router.Running():
			a.routed.Do(func() { close(a.routing) })
		case <-ctx.Done():
		}
	}()
	if err := router.Run(ctx); err != nil {
		return fmt.Errorf("route allocation requests: %w", err) // wrapped, as above
	}
	return nil
}

// flushWait bounds the flush that asks the server whether it took the
// router's subscription; past it, NATS did not answer, and the start is
// tried again.
const flushWait = 5 * time.Second

// subscribed is a subscription made already, as the router's subscriber:
// it hands the router the subscription's messages, and leaves closing it
// to the context it was made with.
type subscribed <-chan *message.Message

func (s subscribed) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	return s, nil
}
func (subscribed) Close() error { return nil }

// subscriber binds to the provisioned allocator consumer.
func (a *Allocator) subscriber(wlog watermill.LoggerAdapter) (*wmnats.Subscriber, error) {
	return wmnats.NewSubscriberWithNatsConn(a.nc, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      unmarshaler{},
		SubscribersCount: a.cfg.Concurrency,
		QueueGroupPrefix: events.AllocatorDeliverGroup,
		// The handler retries within RetryDeadline; past AckWait the
		// server would redeliver anyway.
		AckWaitTimeout: events.AllocatorAckWait,
		NakDelay:       wmnats.NewStaticDelay(a.cfg.NakDelay),
		CloseTimeout:   a.cfg.CloseTimeout,
		JetStream: wmnats.JetStreamConfig{
			// Bind to the provisioned consumer; never create (and so never
			// delete) one. ManualAck stops nats.go from acking on receipt.
			SubscribeOptions: []nats.SubOpt{
				nats.Bind(a.subj.AllocationsStream(), events.ConsumerAllocator),
				nats.ManualAck(),
			},
			DurablePrefix: events.ConsumerAllocator,
			// The ack goes without waiting for the server's answer: by
			// then the match's record and results are stored, so an ack
			// lost on the way only brings the match back after AckWait,
			// and its record makes that delivery repeat the same results
			// (the same message ids: stored once). A waited ack held one
			// of the Concurrency subscribers for a round trip per match.
			AckAsync: true,
		},
	}, wlog)
}

// The metadata the unmarshaler gives a match's message: its subject,
// and, from its JetStream metadata, its stream sequence (its dead
// letter's id); and it marks the message a delivery of its own
// (newDelivery, delivery.go).
const (
	metaSubject   = "nats_subject"
	metaStreamSeq = "nats_stream_seq"
)

// unmarshaler turns any NATS message into a watermill message and never
// fails: watermill-nats drops a message it cannot unmarshal without acking
// it, which would redeliver a poison message forever. Validation happens in
// the handler, where a bad match is dead-lettered with its reason.
type unmarshaler struct{}

func (unmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	id := m.Header.Get(jetstream.MsgIDHeader)
	if id == "" {
		id = watermill.NewUUID()
	}
	msg := message.NewMessage(id, m.Data)
	for k, v := range m.Header {
		if len(v) > 0 {
			msg.Metadata.Set(k, v[0])
		}
	}
	msg.Metadata.Set(metaSubject, m.Subject)
	newDelivery(msg) // after the headers: none of them names the delivery
	if md, err := m.Metadata(); err == nil {
		msg.Metadata.Set(metaStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	}
	return msg, nil
}
