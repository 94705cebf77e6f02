package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Provision creates every stream, consumer and bucket of the topology that
// is missing, and updates those whose configuration differs from the
// declaration (see drift.go for what differs). It is idempotent: the
// provisioning step runs it once per install and upgrade, and running it
// against a provisioned server changes nothing; in particular it sends no
// update for an unchanged stream, since updating a stream while another
// client creates a consumer on it races inside nats-server 2.15. A change
// that JetStream cannot apply in place (a stream's retention, say) fails
// with the stream named, rather than deleting data.
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

// getOrCreate reads a stream, consumer or bucket, creating it when it is
// missing. created reports that this call made it as declared, so there is
// nothing to compare; one that another service created just now is read.
func getOrCreate[T any](get func() (T, error), create func() error, missing, exists error) (have T, created bool, err error) {
	have, err = get()
	if !errors.Is(err, missing) {
		return have, false, err
	}
	if err = create(); !errors.Is(err, exists) {
		return have, err == nil, err
	}
	have, err = get()
	return have, false, err
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	st, created, err := getOrCreate(
		func() (jetstream.Stream, error) { return js.Stream(ctx, want.Name) },
		func() error { _, err := js.CreateStream(ctx, want); return err },
		jetstream.ErrStreamNotFound, jetstream.ErrStreamNameAlreadyInUse)
	if err != nil || created {
		return err
	}
	if diff, err := differs(st.CachedInfo().Config, want, streamRules); err != nil || !diff {
		return err
	}
	_, err = js.UpdateStream(ctx, want)
	return err
}

// ensureConsumer creates or updates a pull consumer, or a push consumer
// when the declaration has a deliver subject: nats.go keeps the two apart.
// A consumer of the other kind is deleted and made again, since the
// server changes none in place: the allocators' consumer was a push
// consumer before #20's sixteenth round. Its stream is a work queue, so
// what it had not acked stays in the stream and the new one delivers it;
// on a stream of another retention, the new consumer would start again
// from its DeliverPolicy.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, c StreamConsumer) error {
	push := c.Config.DeliverSubject != ""
	have, created, err := getOrCreate(func() (*jetstream.ConsumerInfo, error) {
		info, err := c.Info(ctx, js)
		if !errors.Is(err, jetstream.ErrNotPullConsumer) && !errors.Is(err, jetstream.ErrNotPushConsumer) {
			return info, err
		}
		if err := js.DeleteConsumer(ctx, c.Stream, c.Config.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("delete consumer %s of the other kind: %w", c.Config.Durable, err)
		}
		return nil, jetstream.ErrConsumerNotFound // made again below
	}, func() (err error) {
		if push {
			_, err = js.CreatePushConsumer(ctx, c.Stream, c.Config)
		} else {
			_, err = js.CreateConsumer(ctx, c.Stream, c.Config)
		}
		return err
	}, jetstream.ErrConsumerNotFound, jetstream.ErrConsumerExists)
	if err != nil || created {
		return err
	}
	if diff, err := differs(have.Config, c.Config, consumerRules); err != nil || !diff {
		return err
	}
	if push {
		_, err = js.UpdatePushConsumer(ctx, c.Stream, c.Config)
	} else {
		_, err = js.UpdateConsumer(ctx, c.Stream, c.Config)
	}
	return err
}

// Info reads c's consumer as the kind declared (push, with a deliver
// subject, or pull): one of the other kind is jetstream.ErrNotPushConsumer
// or ErrNotPullConsumer.
func (c StreamConsumer) Info(ctx context.Context, js jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	if c.Config.DeliverSubject != "" {
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

func ensureBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) error {
	kv, created, err := getOrCreate(
		func() (jetstream.KeyValue, error) { return js.KeyValue(ctx, want.Bucket) },
		func() error { _, err := js.CreateKeyValue(ctx, want); return err },
		jetstream.ErrBucketNotFound, jetstream.ErrBucketExists)
	if err != nil {
		return err
	}
	if !created {
		// A bucket is a stream: its status reads the bucket's settings
		// back from what the stream's became.
		st, err := kv.Status(ctx)
		if err != nil {
			return err
		}
		diff, err := differs(st.Config(), want, bucketRules)
		if err != nil {
			return err
		}
		if diff {
			if _, err := js.UpdateKeyValue(ctx, want); err != nil {
				return err
			}
		}
	}
	return denyRollups(ctx, js, want.Bucket)
}

// denyRollups turns rollups off on bucket's stream, which nats.go makes
// with them on (for KeyValue.Purge, which nothing here calls): a rollup
// needs no more than the right to write one key, and a message with
// "Nats-Rollup: all" on any key emptied the whole bucket, so any service
// could wipe what it may write (the frontend every claim, the matcher
// every lease), a purge the NATS permissions deny. Creating or updating
// the bucket turns them on again, so this follows both.
func denyRollups(ctx context.Context, js jetstream.JetStream, bucket string) error {
	st, err := js.Stream(ctx, BucketStream(bucket))
	if err != nil {
		return err
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowRollup {
		return nil
	}
	cfg.AllowRollup = false
	_, err = js.UpdateStream(ctx, cfg)
	return err
}

// BucketStream is the name of the stream that holds bucket (nats.go's
// "KV_" + name).
func BucketStream(bucket string) string { return "KV_" + bucket }
