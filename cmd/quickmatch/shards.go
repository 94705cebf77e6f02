package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// The deployment's shards are read from NATS, not from flags of the
// CLI: provisioning puts one consumer on the tickets stream for each
// shard (events.ShardConsumer), filtered on its subject. A CLI that
// checked its own defaults (eu, us, asia) drained "eu.gold" on a
// deployment serving eu-west, saying it had, and refused the real shard.

// servedShard reads arg, a shard the deployment serves: a typo, or a
// shard of another deployment, is refused rather than acted on silently.
// (Provisioning keeps the consumers of a region it no longer declares:
// such a shard counts as served until they are deleted.)
func (s *session) servedShard(ctx context.Context, arg string) (events.Shard, error) {
	shard, err := events.ParseShard(arg)
	if err != nil {
		return events.Shard{}, err
	}
	_, err = s.js.Consumer(ctx, s.subj.TicketsStream(), events.ShardConsumer(shard.Region, shard.Tier))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return shard, fmt.Errorf("%w: shard %s is not one of this deployment's (no consumer %s on %s)",
			errNotServed, arg, events.ShardConsumer(shard.Region, shard.Tier), s.subj.TicketsStream())
	}
	if err != nil {
		return shard, fmt.Errorf("shard %s: %w", arg, err)
	}
	return shard, nil
}

// errNotServed: the shard named is not one the deployment serves.
var errNotServed = errors.New("not served")

// servedRegions are the regions of the deployment's shards, from the
// filter subjects of its shard consumers.
func (s *session) servedRegions(ctx context.Context) (events.Regions, error) {
	st, err := s.js.Stream(ctx, s.subj.TicketsStream())
	if err != nil {
		return nil, fmt.Errorf("the deployment's regions: %w", err)
	}
	var out events.Regions
	list := st.ListConsumers(ctx)
	for info := range list.Info() {
		region, _, err := s.subj.ParseTicket(info.Config.FilterSubject)
		if err == nil && !slices.Contains(out, region) {
			out = append(out, region)
		}
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("the deployment's regions: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the deployment's regions: no shard consumer on %s", s.subj.TicketsStream())
	}
	slices.Sort(out)
	return out, nil
}
