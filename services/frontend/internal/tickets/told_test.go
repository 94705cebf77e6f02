package tickets

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/identity"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// toldEnv is a frontend's ticket service on an embedded JetStream server,
// logging into logs.
type toldEnv struct {
	s    *Service
	nc   *nats.Conn
	js   jetstream.JetStream
	subj events.Subjects
	logs *testkit.SyncBuffer
}

func newToldEnv(t *testing.T) *toldEnv {
	t.Helper()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Parse([]byte(`{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	s, err := New(t.Context(), Config{Regions: events.DefaultRegions, Tiers: events.DefaultTiers, Rules: rules.Fixed(set)},
		js, events.Subjects{}, noTracker{}, roomEverywhere{}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &toldEnv{s: s, nc: nc, js: js, logs: logs}
}

// create queues a ticket for player and returns its id.
func (e *toldEnv) create(t *testing.T, player string) string {
	t.Helper()
	skill := 1650
	v, err := e.s.Create(t.Context(), identity.Caller{PlayerID: player}, Request{Mode: "1v1", Skill: &skill, Region: "eu"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return v.TicketID
}

// stored is the newest result stored for player, or nil.
func (e *toldEnv) stored(t *testing.T, player string) *events.Result {
	t.Helper()
	return testkit.Last(t, e.js, e.subj.ResultsStream(), e.subj.Result(player), events.DecodeResult)
}

// resultsTo points the RESULTS stream at subjects: away from the
// players' (a publish of a result then fails, as one timed out under a
// partition) and back.
func (e *toldEnv) resultsTo(t *testing.T, subjects string) {
	t.Helper()
	st, err := e.js.Stream(t.Context(), e.subj.ResultsStream())
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Subjects = []string{subjects}
	if _, err := e.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
}

// TestExpireRetriesUntilStored is issue #19's lost ticket on the
// frontend's side: its expiry claimed the ticket expired, the result's
// publish failed, and nothing tried again. An expiry tries once and
// returns (its tracker calls it again a wait later: results'
// TestExpiryInFlightIsNotFiredAgain); the next one, finding the claim
// its own and untold, stores the result.
func TestExpireRetriesUntilStored(t *testing.T) {
	t.Parallel()
	e := newToldEnv(t)
	id := e.create(t, "pat")
	e.resultsTo(t, "nowhere.>")
	e.s.Expire(t.Context(), id)
	if !strings.Contains(e.logs.String(), "expire ticket") {
		t.Fatal("the expiry did not fail")
	}
	if owner, err := e.s.claims.Owner(t.Context(), id); err != nil || owner != events.OwnerExpired {
		t.Fatalf("claim %q %v, want expired", owner, err)
	}
	e.resultsTo(t, e.subj.AllResults())
	e.s.Expire(t.Context(), id)
	if r := e.stored(t, "pat"); r == nil || r.TicketID != id || r.Status != events.StatusExpired {
		t.Fatalf("claimed expired, stored %+v", r)
	}
}

// TestEndTellsAClaimNobodyTold: a cancel or an expiry that meets a claim
// of another outcome than a match, which its claimer never told (a
// frontend or matcher that died between the claim and the publish),
// tells the players what the claim says.
func TestEndTellsAClaimNobodyTold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, owner string
		cancel      bool
		want        events.Status
	}{
		{"a cancel meets expired", events.OwnerExpired, true, events.StatusExpired},
		{"an expiry meets cancelled", events.OwnerCancelled, false, events.StatusCancelled},
		{"an expiry meets failed", events.OwnerFailed, false, events.StatusFailed},
		{"a cancel meets superseded", events.OwnerSuperseded, true, events.StatusCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newToldEnv(t)
			id := e.create(t, "pat")
			rec, err := e.s.Record(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			notices := testkit.Collect(t, e.nc, e.subj.Cancel(rec.Shard.Region, rec.Shard.Tier))
			if won, _, err := e.s.claims.Claim(t.Context(), id, tt.owner); err != nil || !won {
				t.Fatalf("claim: %v %v", won, err)
			}
			if tt.cancel {
				v, err := e.s.Cancel(t.Context(), identity.Caller{PlayerID: "pat"}, id, "")
				if !errors.Is(err, ErrAlreadyDecided) || v.Status != tt.want {
					t.Fatalf("cancel: %+v %v, want already %s", v, err, tt.want)
				}
			} else {
				e.s.Expire(t.Context(), id)
			}
			r := e.stored(t, "pat")
			if r == nil || r.TicketID != id || r.Status != tt.want {
				t.Fatalf("pat's newest result %+v, want %s of %s", r, tt.want, id)
			}
			if tt.owner != events.OwnerSuperseded {
				return
			}
			// Told as its superseder tells it (events.Claims.Tell): the
			// same words, and the cancel notices to its shards.
			if want := events.ClaimedResult(id, "pat", tt.owner).Reason; r.Reason != want {
				t.Fatalf("reason %q, want %q", r.Reason, want)
			}
			testkit.Eventually(t, 5*time.Second, func() bool { return len(notices()) > 0 }, "no cancel notice for the superseded ticket")
		})
	}
}
