// Command matchfunction is an example match function: it proposes matches
// of the closest skills with balanced teams, served to the matcher over
// NATS. Package closest proposes the matches, matchfn.Serve serves them.
// A mode uses it when the rule set names it:
//
//	{"name": "2v2", "teams": 2, "team_size": 2, "max_wait": "5m",
//	 "match_function": {"service": "closest", "timeout": "2s", "on_failure": "fallback"}}
//
//	go run ./examples/matchfunction -nats-url nats://127.0.0.1:4222 -service closest
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/quickmatch-dev/quickmatch/examples/matchfunction/closest"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/matchfn"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/natsconn"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/service"
)

// about says what this command is: the first line of its -h
// and of its package comment (TestHelp checks that they agree).
const about = "matchfunction is an example match function: it proposes matches of the closest skills with balanced teams, served to the matcher over NATS."

func main() { service.Main("matchfunction", run) }

func run(ctx context.Context, args []string) error {
	var nc natsconn.Config
	var name string
	s := closest.DefaultSpread
	fs := envflag.NewFlagSet("matchfunction", about)
	nc.RegisterFlags(fs)
	fs.StringVar(&name, "service", "closest", "the match function's name: the rule set's match_function.service")
	fs.IntVar(&s.Initial, "spread", s.Initial, "largest skill spread of a match at first (default: the rule set's default skill window)")
	fs.IntVar(&s.PerSecond, "spread-per-second", s.PerSecond, "how much the spread grows for each second the longest-waiting ticket waited")
	fs.IntVar(&s.Max, "spread-max", s.Max, "largest skill spread of a match however long its tickets waited")
	if err := envflag.Parse(fs, args); err != nil {
		return err
	}
	if err := errors.Join(nc.Validate(), events.ValidatePrefix(nc.SubjectPrefix), events.CheckToken(name)); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	conn, err := natsconn.Connect(nc, "matchfunction", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	subj := events.Subjects{Prefix: nc.SubjectPrefix}
	svc, err := matchfn.Serve(conn, name, closest.Func(s), matchfn.WithSubjects(subj), matchfn.WithLogger(log))
	if err != nil {
		return err
	}
	log.Info("match function serving", "service", name, "subject", subj.MatchFunction(name))
	<-ctx.Done()
	// Stop drains the endpoint: a request being answered is answered.
	if err := svc.Stop(); err != nil {
		return fmt.Errorf("stop match function: %w", err)
	}
	return conn.Drain()
}
