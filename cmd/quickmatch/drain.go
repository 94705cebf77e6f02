package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// drained is a drain as the CLI prints it.
type drained struct {
	Shard  string    `json:"shard"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// drainCmd makes a shard stop admitting tickets: the frontends refuse its
// new tickets with 503 and the reason, and its waiting tickets are still
// matched (events.Drains).
func drainCmd(fs *flag.FlagSet) runFunc {
	reason := fs.String("reason", "", "what clients are told (required)")
	by := fs.String("by", cmp.Or(os.Getenv("USER"), "operator"), "who drains it, kept with the drain")
	return func(ctx context.Context, s *session, args []string) error {
		if *reason == "" {
			return fmt.Errorf("drain: -reason is required: it is what the refused clients read")
		}
		shard, err := s.servedShard(ctx, args[0])
		if err != nil {
			return err
		}
		d, err := events.NewDrains(ctx, s.js, s.subj)
		if err != nil {
			return err
		}
		dr, err := d.Drain(ctx, shard, *reason, *by)
		if err != nil {
			return err
		}
		return printDrains(s, []drained{{Shard: shard.String(), Reason: dr.Reason, By: dr.By, At: dr.At}})
	}
}

// resumeCmd makes a drained shard admit tickets again: one the
// deployment serves, or one drained that it no longer serves (a region
// removed since), so that its drain can be cleared.
func resumeCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, s *session, args []string) error {
		shard, err := s.servedShard(ctx, args[0])
		notServed := errors.Is(err, errNotServed)
		if err != nil && !notServed {
			return err
		}
		d, err := events.NewDrains(ctx, s.js, s.subj)
		if err != nil {
			return err
		}
		if notServed {
			all, err := d.List(ctx) // a drain that does not read (err) is not this one
			if _, drained := all[shard]; !drained {
				if err != nil {
					return err
				}
				_, err := s.servedShard(ctx, args[0])
				return err
			}
		}
		was, err := d.Resume(ctx, shard)
		if err != nil {
			return err
		}
		if s.json {
			return printJSON(s.out, map[string]any{"shard": shard.String(), "was_drained": was})
		}
		if !was {
			_, err = fmt.Fprintf(s.out, "shard %s was not drained\n", shard)
			return err
		}
		_, err = fmt.Fprintf(s.out, "shard %s resumed: it admits tickets again\n", shard)
		return err
	}
}

// drainsCmd lists the drained shards.
func drainsCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, s *session, _ []string) error {
		d, err := events.NewDrains(ctx, s.js, s.subj)
		if err != nil {
			return err
		}
		all, err := d.List(ctx)
		out := []drained{}
		for shard, dr := range all {
			out = append(out, drained{Shard: shard.String(), Reason: dr.Reason, By: dr.By, At: dr.At})
		}
		slices.SortFunc(out, func(a, b drained) int { return cmp.Compare(a.Shard, b.Shard) })
		if perr := printDrains(s, out); perr != nil {
			return perr
		}
		return err // a drain that does not read, named, after the ones that do
	}
}

func printDrains(s *session, ds []drained) error {
	if s.json {
		return printJSON(s.out, ds)
	}
	t := newTable(s.out, "SHARD", "REASON", "BY", "SINCE")
	for _, d := range ds {
		t.row(d.Shard, d.Reason, d.By, at(d.At))
	}
	return t.flush()
}
