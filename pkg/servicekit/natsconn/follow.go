package natsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow hands every entry of the bucket kv to apply, its current values
// first and then each change, until ctx ends. A watch that cannot start or
// that ends (NATS away) is started again a second later, so a service
// keeps serving on what it last saw meanwhile; what is the bucket for is
// said in the warning. apply runs on Follow's goroutine.
func Follow(ctx context.Context, kv jetstream.KeyValue, what string, log *slog.Logger, apply func(jetstream.KeyValueEntry)) error {
	for {
		err := followOnce(ctx, kv, what, apply)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn(what+" watch ended; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func followOnce(ctx context.Context, kv jetstream.KeyValue, what string, apply func(jetstream.KeyValueEntry)) error {
	watch, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", what, err)
	}
	defer func() { _ = watch.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-watch.Updates():
			if !ok {
				return errors.New("watch closed")
			}
			if e == nil {
				continue // the end of the current values
			}
			apply(e)
		}
	}
}
