package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// fixture is a session on a provisioned embedded NATS, with the services'
// own writers to set up the state a command meets.
type fixture struct {
	s       *session
	out     *strings.Builder
	js      jetstream.JetStream
	claims  *events.Claims
	players *events.Players
	pub     *events.Publisher
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{}
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	claims, err := events.NewClaims(t.Context(), js, subj)
	if err != nil {
		t.Fatal(err)
	}
	players, err := events.NewPlayers(t.Context(), js, subj, claims)
	if err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	return &fixture{s: &session{js: js, subj: subj, out: out, close: func() {}}, out: out, js: js,
		claims: claims, players: players, pub: events.NewPublisher(js, subj)}
}

// deadLetter stores a matcher's dead letter of ticket t, refused at at,
// and reads it back as the CLI does.
func (f *fixture) deadLetter(t *testing.T, tk events.Ticket, at time.Time) *deadLetter {
	t.Helper()
	return f.deadLetterOf(t, tk, at, events.Meta{}, events.Meta{})
}

// deadLetterOf is deadLetter whose record kept the meta of the ticket's
// message, published with the meta sent.
func (f *fixture) deadLetterOf(t *testing.T, tk events.Ticket, at time.Time, kept, sent events.Meta) *deadLetter {
	t.Helper()
	payload, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	dl := events.NewDeadLetter("matcher", "matchmaking.eu.gold", 7, payload, errors.New(`unknown mode "duel"`), at)
	dl.KeepMeta(kept)
	if err := f.pub.DeadLetter(events.WithMeta(t.Context(), sent), dl); err != nil {
		t.Fatal(err)
	}
	stream, err := f.s.deadLetterStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.s.readDeadLetter(t.Context(), stream, info.State.LastSeq, false)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// claim claims ticketID for owner, as its decider does.
func (f *fixture) claim(t *testing.T, ticketID, owner string) {
	t.Helper()
	if won, got, err := f.claims.Claim(t.Context(), ticketID, owner); err != nil || !won {
		t.Fatalf("claim %s for %s: %v %s %v", ticketID, owner, won, got, err)
	}
}

// results are the results player was sent.
func (f *fixture) results(t *testing.T, player string) []events.Result {
	t.Helper()
	rs, err := f.s.results(t.Context(), player)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
