package matcher

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestDeadLettersKeepTheirFlow: each dead letter the matcher writes keeps
// the correlation id and traceparent of the message it refused in its
// record (DeadLetter.Headers), only those that are well formed: so that
// a replay of it (quickmatch deadletters replay) is the same flow in
// every log and trace. A ticket its shard refuses, a stray, a ticket
// whose id is another player's, a backfill request.
func TestDeadLettersKeepTheirFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{})
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"X","player_id":"vic","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "victim not pooled")
	tp := func(i int) string { return fmt.Sprintf("00-%032x-%016x-01", i+1, i+1) }
	cases := []struct {
		name, subject, data, correlation string
		dropped                          bool // the correlation id is not well formed
	}{
		{"refused by its shard", "matchmaking.eu.gold", `{"player_id":"x4","skill":1700,"mode":"chess"}`, "c-shard", false},
		{"a stray", "matchmaking.mars.gold", `{"player_id":"x3","skill":1700}`, "c-stray", false},
		{"an id another player's", "matchmaking.us.gold", `{"ticket_id":"X","player_id":"att","skill":1800}`, "c-taken", false},
		{"a backfill request", e.subj.Backfill("eu", "gold"), `not a backfill`, "c-backfill", false},
		{"a correlation id too long", "matchmaking.eu.gold", `{"player_id":"x5","skill":1700,"mode":"chess"}`, strings.Repeat("c", events.MaxCorrelationIDBytes+1), true},
	}
	for i, c := range cases {
		msg := nats.NewMsg(c.subject)
		msg.Data = []byte(c.data)
		msg.Header.Set(events.HeaderCorrelationID, c.correlation)
		msg.Header.Set(events.HeaderTraceParent, tp(i))
		if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == len(cases) }, "%d dead letters, want %d", len(dls()), len(cases))
	got := map[string]events.DeadLetter{}
	for _, d := range deadLetters(t, dls()) {
		got[string(d.Payload)] = d
	}
	for i, c := range cases {
		d, ok := got[c.data]
		if !ok {
			t.Errorf("%s: no dead letter", c.name)
			continue
		}
		want := events.Meta{CorrelationID: c.correlation, TraceParent: tp(i)}
		wantHeaders := 2
		if c.dropped {
			want.CorrelationID, wantHeaders = "", 1
		}
		if m := d.Meta(); m != want || len(d.Headers) != wantHeaders {
			t.Errorf("%s: dead letter headers %q, want %+v", c.name, d.Headers, want)
		}
	}
}
