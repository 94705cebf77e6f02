package matcher

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestTicketCancelledWhileWaitingForRulesIsNotDeadLettered: a "duel"
// ticket stamped with the frontend's newer rule set waits in the matcher
// (old rules). Its player gives up and cancels it (the frontend claims
// it "cancelled" and tells them). At its next try the claim is found
// taken: the message is dropped, and not dead-lettered (a dead letter is
// a message no service could take, and this one the frontend took; a
// rollout's wait is up to 2 minutes, and every ticket cancelled in it
// was one). A ticket refused for what it is stays a dead letter, its
// claim taken or not.
func TestTicketCancelledWhileWaitingForRulesIsNotDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startWorker(t, Config{RulesFile: writeRules(t, "", oldRules), RulesReload: time.Hour}, retryEvery(30*time.Millisecond))
	cons, err := e.js.Consumer(t.Context(), e.subj.TicketsStream(), events.ShardConsumer("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	info := func() *jetstream.ConsumerInfo {
		ci, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ci
	}
	deadLetters := func() uint64 { return testkit.StreamMsgs(t, e.js, e.subj.DeadLetterStream()) }

	e.pubStamped(t, `{"ticket_id":"d1","player_id":"d1","skill":1800,"mode":"duel"}`, versionOf(t, newRules))
	testkit.Eventually(t, 10*time.Second, func() bool { return info().NumRedelivered > 0 }, "d1 never tried again")
	if n := deadLetters(); n != 0 {
		t.Fatalf("setup: %d dead letters while d1 waits", n)
	}
	// The frontend's cancel: the claim is "cancelled" (players told there).
	if won, _, err := e.claims(t).Claim(t.Context(), "d1", events.OwnerCancelled); err != nil || !won {
		t.Fatal(won, err)
	}
	settled := func() bool { ci := info(); return ci.NumAckPending == 0 && ci.NumPending == 0 }
	testkit.Eventually(t, 10*time.Second, settled, "cancelled d1 still waits")
	if n := deadLetters(); n != 0 {
		t.Fatalf("a ticket cancelled while it waited for rules was dead-lettered (%d dead letters)", n)
	}

	// Unstamped, "duel" is refused for what it is: cancelled first, it is
	// a dead letter all the same (and its players are told nothing: the
	// claim is not the refusal's).
	if won, _, err := e.claims(t).Claim(t.Context(), "d2", events.OwnerCancelled); err != nil || !won {
		t.Fatal(won, err)
	}
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"d2","player_id":"d2","skill":1800,"mode":"duel"}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return deadLetters() == 1 && settled() }, "refused d2 not dead-lettered")
}
