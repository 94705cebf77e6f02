package matcher

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

func deadLetters(t *testing.T, msgs []*nats.Msg) []events.DeadLetter {
	t.Helper()
	var out []events.DeadLetter
	for _, m := range msgs {
		var d events.DeadLetter
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestWildcardSubjectDeadLettersThatTicketAlone: tickets published on
// literal wildcard subjects (`matchmaking.*.gold`, `matchmaking.>`, as a
// hostile `nats pub` may) are stored by the tickets stream like any
// other. The stray sweep must dead-letter exactly those messages, and
// leave the older real tickets of the shards those subjects would match
// as filters where they are: they are matched afterwards.
func TestWildcardSubjectDeadLettersThatTicketAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	// The real tickets are the oldest in the stream, so a get-message
	// call given a wildcard as a filter would find them first.
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"real-eu","player_id":"ann","skill":1650}`)
	e.pub(t, "matchmaking.us.gold", `{"ticket_id":"real-us","player_id":"ben","skill":1650}`)
	wild := map[string]string{
		"matchmaking.*.gold": `{"ticket_id":"wild-1","player_id":"mallory","skill":1650}`,
		"matchmaking.>":      `{"ticket_id":"wild-2","player_id":"mallet","skill":1650}`,
		"matchmaking.eu.*":   `{"ticket_id":"wild-3","player_id":"malcolm","skill":1650}`,
	}
	for subject, data := range wild {
		if err := e.nc.Publish(subject, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 5 }, "the wildcard tickets were not stored")
	e.startWorker(t, Config{StraySweep: 50 * time.Millisecond})

	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) >= len(wild) }, "want a dead letter per wildcard ticket")
	time.Sleep(500 * time.Millisecond) // several more sweeps
	got := deadLetters(t, dls())
	if len(got) != len(wild) {
		t.Errorf("want %d dead letters, got %d", len(wild), len(got))
	}
	for _, d := range got {
		if want, ok := wild[d.Subject]; !ok || string(d.Payload) != want {
			t.Errorf("dead letter of %s %s: not a wildcard ticket (reason %q)", d.Subject, d.Payload, d.Reason)
		}
	}
	// The real tickets are still waiting in their shards, and match.
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"real-eu-2","player_id":"cat","skill":1650}`)
	e.pub(t, "matchmaking.us.gold", `{"ticket_id":"real-us-2","player_id":"dan","skill":1650}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 2 }, "the real tickets were not matched")
	var ids []string
	for _, m := range published(t, allocs()) {
		for _, tk := range m.Tickets {
			ids = append(ids, tk.TicketID)
		}
	}
	for _, id := range []string{"real-eu", "real-us"} {
		if !strings.Contains(strings.Join(ids, ","), id) {
			t.Errorf("%s not matched; matched %v", id, ids)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "tickets left in the stream")
}

// TestOversizedTicketIsDeadLettered: a ticket over events.MaxPayloadBytes
// sent with a core publish (no ack, so the publisher cannot see a
// refusal) must reach a dead letter that says why, and the players are
// not left waiting on nothing. The larger one is near the server's max
// payload, so its dead letter must fit the dead-letter stream too.
func TestOversizedTicketIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{})
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	sizes := []int{events.MaxPayloadBytes + 1024, int(e.nc.MaxPayload()) - 4096}
	for i, n := range sizes {
		body := fmt.Sprintf(`{"ticket_id":"big-%d","player_id":"big%d","skill":1650,"pad":"`, i, i)
		body += strings.Repeat("x", n-len(body)-2) + `"}`
		if err := e.nc.Publish("matchmaking.eu.gold", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == len(sizes) }, "want a dead letter per oversized ticket")
	for _, d := range deadLetters(t, dls()) {
		if !strings.Contains(d.Reason, fmt.Sprintf("at most %d", events.MaxPayloadBytes)) || d.StreamSeq == 0 {
			t.Errorf("dead letter %s seq %d: reason %q", d.Subject, d.StreamSeq, d.Reason)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 }, "oversized tickets left in the stream")
}

// TestCreatedAtIsBounded: created_at is the client's word. A ticket that
// says it was created long before it reached the stream (more than the
// mode's max wait plus events.CreatedAtSlack) or after it (more than
// events.MaxClockSkew) is dead-lettered with the reason and its player is
// told; one a little in the future counts from when the stream stored
// it; one backdated within the bound is matched as usual.
func TestCreatedAtIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.startWorker(t, Config{})
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	e.pub(t, "matchmaking.eu.gold", fmt.Sprintf(`{"ticket_id":"ancient","player_id":"old","skill":1800,"created_at":%q}`, at(-2*time.Hour)))
	e.pub(t, "matchmaking.eu.gold", fmt.Sprintf(`{"ticket_id":"future","player_id":"fut","skill":1800,"created_at":%q}`, at(10*time.Minute)))
	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == 2 }, "want 2 dead letters")
	for _, d := range deadLetters(t, dls()) {
		if len(d.Fields) == 0 || d.Fields[0].Field != "created_at" {
			t.Errorf("dead letter %s: fields %+v reason %q", d.Payload, d.Fields, d.Reason)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(res()) == 2 }, "players not told")
	for p, rs := range results(t, res()) {
		if len(rs) != 1 || rs[0].Status != events.StatusFailed || !strings.Contains(rs[0].Reason, "created_at") {
			t.Errorf("%s: %+v", p, rs)
		}
	}
	// Within the bounds: pooled and matched.
	e.pub(t, "matchmaking.eu.gold", fmt.Sprintf(`{"ticket_id":"ahead","player_id":"ahead","skill":1800,"created_at":%q}`, at(30*time.Second)))
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "the ticket a little ahead was not pooled")
	e.pub(t, "matchmaking.eu.gold", fmt.Sprintf(`{"ticket_id":"behind","player_id":"behind","skill":1800,"created_at":%q}`, at(-time.Minute)))
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "tickets within the bounds not matched")
	for _, tk := range matches(t, allocs())[0].Tickets {
		if tk.TicketID == "ahead" && tk.CreatedAt.After(time.Now()) {
			t.Errorf("ticket ahead of the stream kept created_at %s", tk.CreatedAt)
		}
	}
}
