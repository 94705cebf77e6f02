package events_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestPublishAllStopsSendingWhenCtxEnds: with the client at its max
// pending acks and no ack coming back (a subscriber that never answers),
// each send stalls; PublishAll stops sending once ctx has ended and gives
// the messages not sent ctx's error. Before, it sent on past ctx, each
// message stalling for 200ms and failing with "too many stalled" (R4 F2:
// a phase of thousands of messages ran for minutes past its deadline).
func TestPublishAllStopsSendingWhenCtxEnds(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	if _, err := nc.Subscribe("silent.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]*nats.Msg, 30)
	for i := range msgs {
		msgs[i] = &nats.Msg{Subject: fmt.Sprintf("silent.%d", i), Data: []byte("x")}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	errs := events.PublishAll(ctx, js, msgs)
	for i, err := range errs {
		if err == nil {
			t.Errorf("message %d: stored, with no one to store it", i)
		}
	}
	// 22 sends past the max pending, each stalled at most until ctx's
	// deadline: the last is never sent, and has ctx's error.
	if last := errs[len(errs)-1]; !errors.Is(last, context.DeadlineExceeded) {
		t.Errorf("last message: %v, want ctx's error (sent after ctx ended)", last)
	}
}

// TestStaleReadsFromTheLeader: the live-ticket check (StaleBatch, and
// Stale) reads the players bucket with message gets, which only the
// stream leader answers, never with direct gets, which any replica
// answers however far behind. Before, both read with direct gets (R4 F1).
func TestStaleReadsFromTheLeader(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	ctx := t.Context()
	subj := events.Subjects{Prefix: "sl"}
	if err := events.Provision(ctx, js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	claims, err := events.NewClaims(ctx, js, subj)
	if err != nil {
		t.Fatal(err)
	}
	players, err := events.NewPlayers(ctx, js, subj, claims)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := players.Take(ctx, events.LiveTicket{TicketID: "B", Players: []string{"alice"}, Region: "eu", Tier: "gold", Mode: "1v1", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	// A Collect of ">", so that Seen's marker is heard after every
	// request before it: a Flush returns before the handler has run.
	api := testkit.Collect(t, nc, ">")
	stream := "KV_" + subj.PlayersBucket()
	count := func(from int) (direct, leader int) {
		for _, m := range testkit.Seen(t, nc, api)[from:] {
			switch {
			case strings.HasPrefix(m.Subject, "$JS.API.DIRECT.GET."+stream):
				direct++
			case strings.HasPrefix(m.Subject, "$JS.API.STREAM.MSG.GET."+stream):
				leader++
			}
		}
		return direct, leader
	}
	stale, errs := players.StaleBatch(ctx, []map[string][]string{{"A": {"alice"}}})
	if errs[0] != nil || stale[0]["A"] != "B" {
		t.Fatalf("StaleBatch: %v %v, want A stale by B", stale, errs)
	}
	if d, l := count(0); d != 0 || l == 0 {
		t.Errorf("StaleBatch: %d direct gets, %d leader gets; want leader gets only", d, l)
	}
	from := len(api())
	st, err := players.Stale(ctx, map[string][]string{"A": {"alice"}})
	if err != nil || st["A"] != "B" {
		t.Fatalf("Stale: %v %v, want A stale by B", st, err)
	}
	if d, l := count(from); d != 0 || l == 0 {
		t.Errorf("Stale: %d direct gets, %d leader gets; want leader gets only", d, l)
	}
}

// TestStaleBatchOfManyPlayers: a batch of more players than one round of
// leader reads carries (a batch of matches of 100 players) is read in
// rounds, each player's answer kept with its own group.
func TestStaleBatchOfManyPlayers(t *testing.T) {
	t.Parallel()
	e := newPlayers(t)
	ctx := t.Context()
	const n = 1100
	groups := make([]map[string][]string, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		pl := fmt.Sprintf("p%d", i)
		wg.Go(func() { _, errs[i] = e.players.Take(ctx, live(fmt.Sprintf("t%d", i), time.Now(), pl), e.tell) })
		if i%2 == 0 {
			groups[i] = map[string][]string{fmt.Sprintf("t%d", i): {pl}}
		} else {
			groups[i] = map[string][]string{fmt.Sprintf("old%d", i): {pl}}
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	stale, errs := e.players.StaleBatch(ctx, groups)
	for i := range n {
		want := map[string]string{}
		if i%2 == 1 {
			want[fmt.Sprintf("old%d", i)] = fmt.Sprintf("t%d", i)
		}
		if errs[i] != nil || !maps.Equal(stale[i], want) {
			t.Fatalf("group %d: %v %v, want %v", i, stale[i], errs[i], want)
		}
	}
}

// TestPublishAllWithoutDeadlineEndsAtTheDefaultTimeout: a ctx without a
// deadline (the frontend's creation: its request's) waits for the acks
// as long as a PublishMsg would, the JetStream's default timeout, not
// the async publish timeout. Before, a creation whose acks a cut lost
// (a stream leader cut off) waited the services' 30 s async timeout,
// holding its admission slot: one 6 s cut of a NATS node had every
// frontend refuse every ticket for 25 s (TestChaosShort, CI).
func TestPublishAllWithoutDeadlineEndsAtTheDefaultTimeout(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	if _, err := nc.Subscribe("silent.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	// As the services make theirs (servicekit), with a short default.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(200*time.Millisecond), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []error, 1)
	go func() {
		done <- events.PublishAll(context.Background(), js, []*nats.Msg{{Subject: "silent.1", Data: []byte("x")}})
	}()
	select {
	case errs := <-done:
		if !errors.Is(errs[0], context.DeadlineExceeded) {
			t.Errorf("PublishAll: %v, want the default timeout's context.DeadlineExceeded", errs[0])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PublishAll without a deadline still waiting after 10 s (the default timeout is 200 ms)")
	}
}

// TestResultsWithoutDeadlineEndAtTheDefaultTimeout: Results, as
// PublishAll, waits for lost acks no longer than the JetStream's default
// timeout when its ctx has none (a frontend's take telling a superseded
// ticket's players, under a request's ctx). Before, it waited until the
// async publish timeout, 30 s.
func TestResultsWithoutDeadlineEndAtTheDefaultTimeout(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	subj := events.Subjects{}
	if _, err := nc.Subscribe(subj.AllResults(), func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(200*time.Millisecond), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- events.NewPublisher(js, subj).Results(context.Background(), []events.Result{{TicketID: "t1", PlayerID: "alice", Status: events.StatusCancelled}})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Results: %v, want the default timeout's context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Results without a deadline still waiting after 10 s (the default timeout is 200 ms)")
	}
}
