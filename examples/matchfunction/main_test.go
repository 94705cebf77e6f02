package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/matchfn"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// The command serves under its name and prefix, answers, and stops on
// its context.
func TestRun(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	nc := testkit.Connect(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-nats-url", srv.ClientURL(), "-service", "mmf", "-subject-prefix", "dev"})
	}()
	subject := events.Subjects{Prefix: "dev"}.MatchFunction("mmf")
	req := matchfn.Request{Mode: matchfn.Mode{Name: "1v1", Teams: 2, TeamSize: 1}, Region: "eu", Tier: "gold",
		Candidates: []matchfn.Candidate{{TicketID: "a", Players: []string{"pa"}, Skill: 1000}, {TicketID: "b", Players: []string{"pb"}, Skill: 1100}}}
	var rep matchfn.Reply
	testkit.Eventually(t, 10*time.Second, func() bool {
		r := req
		var err error
		rep, err = matchfn.Call(t.Context(), nc, subject, &r)
		return !errors.Is(err, matchfn.ErrNoFunction)
	}, "the function never served %s", subject)
	if len(rep.Matches) != 1 || rep.Matches[0].String() != "b | a" {
		t.Fatalf("reply = %+v", rep)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := run(t.Context(), []string{"-service", "a.b"}); err == nil {
		t.Fatal("a service name with a dot was taken")
	}
}
