package matcher

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// The rule sets of a rollout: the matcher starts on oldRules; the
// frontend already checks tickets under newRules, which adds "duel".
// Narrow windows keep every ticket in eu.gold, with no visitor copy.
const (
	oldRules = `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","skill_window":{"initial":50,"per_second":0,"max":50}}]}`
	newRules = `{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m","skill_window":{"initial":50,"per_second":0,"max":50}},` +
		`{"name":"duel","teams":2,"team_size":1,"max_wait":"1m","skill_window":{"initial":50,"per_second":0,"max":50}}]}`
)

func versionOf(t *testing.T, body string) string {
	t.Helper()
	s, err := rules.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return s.Version()
}

// pubStamped publishes a ticket stamped with a rule set version, as the
// frontend does (events.Publisher.TicketUnder) or as anyone with `nats
// pub -H` may.
func (e *env) pubStamped(t *testing.T, data, version string) {
	t.Helper()
	msg := nats.NewMsg(e.subj.Ticket("eu", "gold"))
	msg.Data = []byte(data)
	msg.Header.Set(events.HeaderRules, version)
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
}

// retryEvery sets how long a ticket waiting for a rule set sits between
// tries (intake.rulesRetry).
func retryEvery(d time.Duration) func(*Worker) {
	return func(w *Worker) { w.in.rulesRetry = d }
}

// TestTicketWaitsForTheRuleSetItWasCheckedUnder: a frontend that reloaded
// first accepted a "duel" ticket and stamped it with the new rule set's
// version; the matcher, still on the old set, refuses it. It is not
// dead-lettered (its player was promised it): it is tried again, and
// once the matcher's reload brings the new set it is pooled and matched.
func TestTicketWaitsForTheRuleSetItWasCheckedUnder(t *testing.T) {
	t.Parallel()
	const d1 = `{"ticket_id":"d1","player_id":"d1","skill":1800,"mode":"duel"}`
	refusedBy(t, oldRules, d1)
	e := newEnv(t)
	path := writeRules(t, "", oldRules)
	w := e.startWorker(t, Config{RulesFile: path, RulesReload: 20 * time.Millisecond}, retryEvery(30*time.Millisecond))
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	told := testkit.Collect(t, e.nc, e.subj.Result("d1"))
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())

	e.pubStamped(t, d1, versionOf(t, newRules))
	time.Sleep(400 * time.Millisecond) // a dozen tries under the old set
	if n, m := len(dls()), len(told()); n != 0 || m != 0 {
		t.Fatalf("%d dead letters and %d results for a ticket checked under rules on their way", n, m)
	}

	writeRules(t, path, newRules)
	testkit.Eventually(t, 5*time.Second, func() bool { _, ok := w.w.rules.Get().Mode("duel"); return ok }, "rule set not reloaded")
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d2","player_id":"d2","skill":1800,"mode":"duel"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(published(t, allocs())) == 1 }, "the waiting ticket was never matched")
	ids := []string{}
	for _, mt := range published(t, allocs())[0].Tickets {
		ids = append(ids, mt.TicketID)
	}
	if s := strings.Join(ids, ","); s != "d1,d2" && s != "d2,d1" {
		t.Fatalf("match of %s, want d1 and d2", s)
	}
	if n := len(dls()); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// TestTicketWaitsForOtherRulesOnlySoLong: a stamp is the publisher's word.
// One naming rules that never come (a stale frontend's, a hostile
// publisher's) holds its ticket back from refusal only until the ticket is
// rulesWait old by the stream's clock; then it is dead-lettered and its
// player told, as a ticket without a stamp is at once.
func TestTicketWaitsForOtherRulesOnlySoLong(t *testing.T) {
	t.Parallel()
	const d1 = `{"ticket_id":"d1","player_id":"d1","skill":1800,"mode":"duel"}`
	refusedBy(t, oldRules, d1)
	e := newEnv(t)
	clock := newTestClock()
	e.startWorker(t, Config{RulesFile: writeRules(t, "", oldRules), RulesReload: 20 * time.Millisecond}, clock.set, retryEvery(30*time.Millisecond))
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	told := testkit.Collect(t, e.nc, e.subj.Result("d1"))

	e.pubStamped(t, d1, "not-a-version")
	time.Sleep(300 * time.Millisecond)
	if n := len(dls()); n != 0 {
		t.Fatalf("%d dead letters before the ticket was %s old", n, rulesWait)
	}
	clock.add(rulesWait + time.Second) // the test clock stands still: it was read before the publish
	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == 1 && len(told()) == 1 }, "the ticket was not refused past the bound")
	if r := results(t, told())["d1"][0]; r.Status != events.StatusFailed || !strings.Contains(r.Reason, "mode") {
		t.Errorf("d1 told %+v, want failed for its mode", r)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(dls()); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// TestRefusedTicketWithoutOtherRulesIsRefusedAtOnce: a ticket without a
// stamp (published with the nats CLI), or stamped with the matcher's own
// rule set, is judged by it at once, as before: dead-lettered and its
// player told, with no wait (a wait would be an hour here).
func TestRefusedTicketWithoutOtherRulesIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	const (
		plain = `{"ticket_id":"d1","player_id":"d1","skill":1800,"mode":"duel"}`
		own   = `{"ticket_id":"d2","player_id":"d2","skill":1800,"mode":"duel"}`
	)
	refusedBy(t, oldRules, plain)
	e := newEnv(t)
	e.startWorker(t, Config{RulesFile: writeRules(t, "", oldRules)}, retryEvery(time.Hour))
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	told := testkit.Collect(t, e.nc, e.subj.AllResults())
	e.pub(t, e.subj.Ticket("eu", "gold"), plain)
	e.pubStamped(t, own, versionOf(t, oldRules))
	testkit.Eventually(t, 10*time.Second, func() bool { return len(dls()) == 2 && len(told()) == 2 }, "want both refused at once, got %d dead letters", len(dls()))
	for p, rs := range results(t, told()) {
		if len(rs) != 1 || rs[0].Status != events.StatusFailed {
			t.Errorf("%s told %+v, want failed", p, rs)
		}
	}
}
