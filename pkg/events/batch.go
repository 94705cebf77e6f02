package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Batches. A writer with many messages to store at once (a matcher's
// commit of the matches formed in one tick) sends them all before it
// awaits any ack: each message still gets its own ack and its own error,
// but the batch costs one round trip, and the client and the server
// write and read it in a few system calls instead of one per message.
// The helpers below keep each message's outcome apart, so a caller can
// settle every item of a batch on its own.

// PublishAll publishes msgs without waiting between them, then waits for
// every ack until ctx ends. errs[i] is msgs[i]'s outcome (nil: stored). A
// message not acked when ctx ends has ctx's error, and may have been
// stored all the same, as with a PublishMsg that timed out: publish with
// message ids where a retry must be stored once. A message not yet sent
// when ctx ends is not sent, and has ctx's error too. A ctx without a
// deadline waits js's default timeout, as a PublishMsg would: not the
// async publish timeout (the services': 30 s), which a caller holding a
// slot (the frontend's creation, its admission slot) must not wait out
// each time a cut loses its acks.
func PublishAll(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) []error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, js.Options().DefaultTimeout)
		defer cancel()
	}
	errs := make([]error, len(msgs))
	futs := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		// A client at its max pending acks (one count for all of a
		// process's writers) holds each send up to its stall wait: bound
		// that by ctx, and send nothing once ctx has ended, so a phase
		// ends with its deadline however many messages it has.
		opts, err := stallWithin(ctx)
		if err != nil {
			for j := i; j < len(msgs); j++ {
				errs[j] = fmt.Errorf("publish %s: %w", msgs[j].Subject, err)
			}
			break
		}
		fut, err := js.PublishMsgAsync(m, opts...)
		if err != nil {
			errs[i] = fmt.Errorf("publish %s: %w", m.Subject, err)
			continue
		}
		futs[i] = fut
	}
	for i, fut := range futs {
		if fut != nil {
			errs[i] = awaitAck(ctx, fut, msgs[i].Subject)
		}
	}
	return errs
}

// maxStallWait is jetstream's own stall wait (its default, unexported).
const maxStallWait = 200 * time.Millisecond

// stallWithin is the publish option that ends a send's stall by ctx's
// deadline, or ctx's error if ctx has ended (its deadline passed, even if
// its timer has not fired yet).
func stallWithin(ctx context.Context) ([]jetstream.PublishOpt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil, nil
	}
	left := time.Until(deadline)
	if left <= 0 {
		return nil, context.DeadlineExceeded
	}
	return []jetstream.PublishOpt{jetstream.WithStallWait(min(maxStallWait, left))}, nil
}

// awaitAck waits for fut's ack until ctx ends. An ack already in is taken
// first: a select between it and an ended ctx would pick at random, and
// report a stored message as failed.
func awaitAck(ctx context.Context, fut jetstream.PubAckFuture, subject string) error {
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return fmt.Errorf("publish %s: %w", subject, err)
	default:
	}
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return fmt.Errorf("publish %s: %w", subject, err)
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", subject, ctx.Err())
	}
}

// KVWrite is a value to write under a key of a bucket (PutAll, CreateAll).
type KVWrite struct {
	Key   string
	Value []byte
	// Header, if set, is stored with the value (a match's claims carry
	// the match: HeaderMatch). A bucket written through its own methods
	// (not batchable: a test's faults) stores the value alone.
	Header nats.Header
}

// PutAll puts each write into kv, as kv.Put would, every put sent before
// any is awaited when kv allows it (batchable). errs[i] is writes[i]'s.
func PutAll(ctx context.Context, kv jetstream.KeyValue, writes []KVWrite) []error {
	return writeAll(ctx, kv, writes, false)
}

// CreateAll creates each write's key in kv with its value unless the key
// exists, as kv.Create would, every create sent before any is awaited
// when kv allows it (batchable). errs[i] is writes[i]'s; a key found to
// exist is an error that is jetstream.ErrKeyExists. A key deleted since
// it was written (a claim given back) counts as existing to a batched
// create, where kv.Create would write it: the caller tries such a key
// again on its own with kv.Create, as it does any key that exists.
func CreateAll(ctx context.Context, kv jetstream.KeyValue, writes []KVWrite) []error {
	return writeAll(ctx, kv, writes, true)
}

func writeAll(ctx context.Context, kv jetstream.KeyValue, writes []KVWrite, create bool) []error {
	js, pre, ok := batchable(kv)
	if !ok {
		// Through kv's own methods, side by side: one round trip still,
		// and a test's faults (KeyValueWrapper) see every write.
		errs := make([]error, len(writes))
		var wg sync.WaitGroup
		for i, w := range writes {
			wg.Go(func() {
				if create {
					_, errs[i] = kv.Create(ctx, w.Key, w.Value)
				} else {
					_, errs[i] = kv.Put(ctx, w.Key, w.Value)
				}
			})
		}
		wg.Wait()
		return errs
	}
	msgs := make([]*nats.Msg, len(writes))
	for i, w := range writes {
		msgs[i] = &nats.Msg{Subject: pre + w.Key, Header: cloneHeader(w.Header), Data: w.Value}
		if create {
			// As jetstream's Create: stored only if the key has no
			// message yet.
			msgs[i].Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		}
	}
	errs := PublishAll(ctx, js, msgs)
	for i, err := range errs {
		if err != nil && create && keyExists(err) {
			errs[i] = fmt.Errorf("create key %s: %w", writes[i].Key, jetstream.ErrKeyExists)
		}
	}
	return errs
}

// cloneHeader is a copy of h that a write can add its own headers to;
// never nil.
func cloneHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h)+1)
	for k, v := range h {
		out[k] = v
	}
	return out
}

// batchable returns the JetStream and the subject prefix to write kv's
// keys with PublishAll: kv must be a bucket bound by BindLeaderGets,
// unwrapped, on the default API prefix (whose keys are written on
// "$KV.<bucket>.<key>", as jetstream's own Put). Any other kv is written
// through its own methods.
func batchable(kv jetstream.KeyValue) (jetstream.JetStream, string, bool) {
	lg, ok := kv.(*leaderGets)
	if !ok || lg.async == nil {
		return nil, "", false
	}
	o := lg.async.Options()
	if o.Domain != "" || (o.APIPrefix != "" && o.APIPrefix != jetstream.DefaultAPIPrefix) {
		return nil, "", false
	}
	return lg.async, lg.pre, true
}

// keyExists reports whether err is JetStream refusing a create because
// the key has a message already: jetstream.ErrKeyExists, or a "wrong last
// sequence" answer (either code). jetstream's Create maps both codes to
// ErrKeyExists but for one path: a key deleted (a claim given back) is
// written at its delete marker's revision, and a create of another
// client landing in between comes back raw (10164 on a replicated
// bucket). Read as an error, it failed a frontend's take that raced its
// matcher's (chaos S63).
func keyExists(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
