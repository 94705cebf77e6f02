package events_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// storedResult is the newest result stored for player, or nil.
func storedResult(t *testing.T, js jetstream.JetStream, player string) *events.Result {
	t.Helper()
	subj := events.Subjects{}
	return testkit.Last(t, js, subj.ResultsStream(), subj.Result(player), events.DecodeResult)
}

// TestTakeTellsAClaimNobodyTold is issue #19's lost ticket met by a Take.
// A ticket's claim was made for an outcome other than a match (a
// frontend's expiry, a cancel) and its claimer never published the
// result (its publish timed out under a partition, or it died). A Take
// that meets that claim, superseding the ticket or finding it older than
// the live one, used to drop it as decided: the players never heard of
// it. Whoever meets such a claim tells them.
func TestTakeTellsAClaimNobodyTold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		owner string
		// newerFirst: the newer ticket is live and the old one comes
		// after it (a redelivery); otherwise the old one is live and the
		// newer one supersedes it.
		newerFirst bool
		want       events.Status
	}{
		{"live ticket expired, newer taken", events.OwnerExpired, false, events.StatusExpired},
		{"live ticket cancelled, newer taken", events.OwnerCancelled, false, events.StatusCancelled},
		{"older ticket expired, taken after the newer", events.OwnerExpired, true, events.StatusExpired},
		{"older ticket failed, taken after the newer", events.OwnerFailed, true, events.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := provisioned(t, events.Topology{})
			c, err := events.NewClaims(t.Context(), js, events.Subjects{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := events.NewPlayers(t.Context(), js, events.Subjects{}, c)
			if err != nil {
				t.Fatal(err)
			}
			e := &playersEnv{claims: c, players: p, told: map[string][]string{}}
			t0 := time.Now()
			old, newer := live("old", t0, "pat"), live("new", t0.Add(time.Second), "pat")
			first, second := old, newer
			if tt.newerFirst {
				first, second = newer, old
			}
			if _, err := p.Take(t.Context(), first, e.tell); err != nil {
				t.Fatal(err)
			}
			// The claimer of old's outcome, then nothing: no result.
			if won, _, err := c.Claim(t.Context(), "old", tt.owner); err != nil || !won {
				t.Fatalf("claim old: %v %v", won, err)
			}
			if _, err := p.Take(t.Context(), second, e.tell); err != nil {
				t.Fatal(err)
			}
			r := storedResult(t, js, "pat")
			if r == nil || r.TicketID != "old" || r.Status != tt.want {
				t.Fatalf("pat's newest result %+v, want %s of old", r, tt.want)
			}
		})
	}
}

// TestTellTellsOnce: a claim's outcome is told (published and marked), and
// whoever meets the claim afterwards finds it told and publishes nothing:
// past the results' duplicate window a second publish would be a second
// result.
func TestTellTellsOnce(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	js := testkit.JetStream(t, nc)
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	subj := events.Subjects{}
	c, err := events.NewClaims(t.Context(), js, subj)
	if err != nil {
		t.Fatal(err)
	}
	sent := testkit.Collect(t, nc, subj.Result("pat"))
	if _, _, err := c.Claim(t.Context(), "t1", events.OwnerExpired); err != nil {
		t.Fatal(err)
	}
	if told, err := c.Told(t.Context(), "t1", events.OwnerExpired); err != nil || told {
		t.Fatalf("told before telling: %v %v", told, err)
	}
	for range 2 {
		if err := c.Tell(t.Context(), events.Telling{Ticket: live("t1", time.Now(), "pat"), Owner: events.OwnerExpired}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if told, err := c.Told(t.Context(), "t1", events.OwnerExpired); err != nil || !told {
		t.Fatalf("not told after telling: %v %v", told, err)
	}
	if r := storedResult(t, js, "pat"); r == nil || r.Status != events.StatusExpired || r.Reason == "" {
		t.Fatalf("stored %+v, want expired with a reason", r)
	}
	// Every publish so far came on nc before this one: once it is heard,
	// so are they.
	if err := nc.Publish(subj.Result("pat"), []byte("end")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		msgs := sent()
		return len(msgs) > 0 && string(msgs[len(msgs)-1].Data) == "end"
	}, "the sentinel was not heard")
	if n := len(sent()) - 1; n != 1 {
		t.Fatalf("%d results published for one claim told twice, want 1", n)
	}
}

// TestTellTellsNoMatch: a match's claim is not Tell's to tell (its
// results are the match's, events.Decisions), nor one given back
// (nothing decided): callers call it whatever owner they met, and it
// publishes and marks nothing for those.
func TestTellTellsNoMatch(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	subj := events.Subjects{}
	c, err := events.NewClaims(t.Context(), js, subj)
	if err != nil {
		t.Fatal(err)
	}
	sent := testkit.Collect(t, nc, subj.Result("pat"))
	for _, owner := range []string{events.MatchOwner("m1"), ""} {
		if err := c.Tell(t.Context(), events.Telling{Ticket: live("t2", time.Now(), "pat"), Owner: owner}, nil); err != nil {
			t.Fatalf("Tell of owner %q: %v", owner, err)
		}
		if told, err := c.Told(t.Context(), "t2", owner); err != nil || told {
			t.Fatalf("owner %q marked told: %v %v", owner, told, err)
		}
	}
	if err := nc.Publish(subj.Result("pat"), []byte("end")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(sent()) > 0 }, "the sentinel was not heard")
	if msgs := sent(); len(msgs) != 1 || string(msgs[0].Data) != "end" {
		t.Fatalf("%d messages published before the sentinel, want none", len(msgs)-1)
	}
}

// TestTellBoundsItsPublish: a result publish whose ack never comes (lost
// on a cut route) held Tell, and the ticket behind it, for as long as
// its caller's context, which has no deadline (a frontend's cancel, a
// Take): Tell gives the publish a deadline of its own and reports it.
func TestTellBoundsItsPublish(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	subj := events.Subjects{}
	c, err := events.NewClaims(t.Context(), js, subj)
	if err != nil {
		t.Fatal(err)
	}
	// RESULTS no longer stores pat's subject and a plain subscriber takes
	// the publish: it is delivered and never acked, as when the ack is lost.
	st, err := js.Stream(t.Context(), subj.ResultsStream())
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Subjects = []string{"nowhere.>"}
	if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	heard := testkit.Collect(t, nc, subj.Result("pat"))
	if _, _, err := c.Claim(t.Context(), "t1", events.OwnerExpired); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- c.Tell(t.Context(), events.Telling{Ticket: live("t1", time.Now(), "pat"), Owner: events.OwnerExpired}, nil)
	}()
	testkit.Eventually(t, 5*time.Second, func() bool { return len(heard()) > 0 }, "the result was not published")
	// Far past the deadline Tell gives itself (events.ClaimCallTimeout):
	// only a Tell that waits for the lost ack is still here.
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Tell reported a result told whose ack never came")
		}
	case <-time.After(5 * events.ClaimCallTimeout):
		t.Fatal("Tell still waits for the ack of a lost publish")
	}
	if told, err := c.Told(t.Context(), "t1", events.OwnerExpired); err != nil || told {
		t.Fatalf("told %v %v, want not marked", told, err)
	}
}
