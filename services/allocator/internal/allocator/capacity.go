package allocator

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
)

// CapacitySource reports the rooms a backend can still give out in a
// region; known is false until it has seen its servers once (nothing is
// reported then: an unknown capacity must not read as none).
type CapacitySource interface {
	Capacity(region string) (events.Capacity, bool)
}

// ReportCapacity puts src's capacity into the capacity bucket for each
// region every interval until ctx ends. Frontends refuse tickets for a
// region whose report shows no room. A failed put is logged and retried at
// the next interval: the bucket's TTL makes a silent allocator's old report
// vanish rather than mislead.
func ReportCapacity(ctx context.Context, js jetstream.JetStream, subj events.Subjects, regions []string, src CapacitySource, every time.Duration, log *slog.Logger) error {
	var kv jetstream.KeyValue
	// NATS silent at start-up is waited out, as Allocator.Bind does.
	err := service.Retry(ctx, js.Conn(), log, "bind the capacity bucket", func(ctx context.Context) error {
		var err error
		kv, err = js.KeyValue(ctx, subj.CapacityBucket())
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting, as at any other time
		}
		return err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, region := range regions {
			c, known := src.Capacity(region)
			if !known {
				continue
			}
			c.SchemaVersion, c.Region, c.At = events.SchemaVersion, region, time.Now().UTC()
			data, _ := json.Marshal(c) // a Capacity always encodes
			if _, err := kv.Put(ctx, region, data); err != nil && ctx.Err() == nil {
				log.Warn("capacity report", "region", region, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
