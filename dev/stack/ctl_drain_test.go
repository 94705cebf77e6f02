package stack_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestCtlDrainAndResume: an operator drains eu.gold with the CLI; the
// frontend then refuses its new tickets with 503, Retry-After and the
// operator's reason, takes another region's, and still matches the
// ticket that waited in eu.gold before the drain; after resume, eu.gold
// takes tickets again. A shard the deployment does not have, or a drain
// without a reason, is refused before anything is written.
func TestCtlDrainAndResume(t *testing.T) {
	s := startStack(t)
	ctl := newCtl(t, s)
	fe := s.FrontendURL()
	for _, bad := range [][]string{{"drain", "-reason", "typo", "eu.gld"}, {"drain", "eu.gold"}, {"drain", "-reason", "x", "eu.*"}} {
		if out, err := ctl.run(t, bad...); err == nil {
			t.Fatalf("quickmatch %v was taken: %s", bad, out)
		}
	}
	if out := ctl.must(t, "drains"); strings.Contains(out, "eu.") {
		t.Fatalf("a refused drain was written:\n%s", out)
	}

	var waiting ticketView
	if code := httpJSON(t, devToken(t, fe, "drain-a"), http.MethodPost, fe+"/v1/tickets", `{"player_id":"drain-a","mode":"1v1","skill":1650,"region":"eu"}`, &waiting); code != http.StatusAccepted {
		t.Fatalf("POST before the drain: %d", code)
	}
	ctl.must(t, "drain", "-reason", "maintenance of eu gold", "eu.gold")
	var listed []struct{ Shard, Reason string }
	if !ctl.json(t, &listed, "drains", "-json") || len(listed) != 1 || listed[0].Shard != "eu.gold" || listed[0].Reason != "maintenance of eu gold" {
		t.Fatalf("drains lists %+v", listed)
	}
	tokB := devToken(t, fe, "drain-b")
	var refused *http.Response
	testkit.Eventually(t, 10*time.Second, func() bool {
		refused = post(t, fe, tokB, "drain-b", "eu")
		return refused.StatusCode == http.StatusServiceUnavailable
	}, "a drained shard kept taking tickets")
	var body struct {
		Error   string
		Drained struct{ Shard, Reason string }
	}
	if err := json.NewDecoder(refused.Body).Decode(&body); err != nil || body.Drained.Shard != "eu.gold" || body.Drained.Reason != "maintenance of eu gold" || refused.Header.Get("Retry-After") == "" {
		t.Fatalf("refusal: %v %+v, Retry-After %q", err, body, refused.Header.Get("Retry-After"))
	}
	if res := post(t, fe, devToken(t, fe, "drain-c"), "drain-c", "us"); res.StatusCode != http.StatusAccepted {
		t.Fatalf("another region refused while eu.gold is drained: %d", res.StatusCode)
	}

	// The ticket that waited before the drain is still matched.
	nc := testkit.ConnectURL(t, s.OperatorURL(), nats.MaxReconnects(0))
	pub := events.NewPublisher(testkit.JetStream(t, nc), events.Subjects{})
	if _, err := pub.Ticket(t.Context(), "eu", "gold", events.Ticket{TicketID: "t-drain-d", PlayerID: "drain-d", Mode: "1v1", Skill: 1650}); err != nil {
		t.Fatal(err)
	}
	var a ctlTicket
	testkit.Eventually(t, 30*time.Second, func() bool {
		return ctl.json(t, &a, "ticket", "-json", waiting.TicketID) && a.Status == "assigned"
	}, "the ticket that waited in the drained shard: %+v", &a)

	if out := ctl.must(t, "resume", "eu.gold"); !strings.Contains(out, "resumed") {
		t.Fatalf("resume said %q", out)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		return post(t, fe, tokB, "drain-b", "eu").StatusCode == http.StatusAccepted
	}, "eu.gold still refuses tickets after resume")
}

// post queues one 1v1 gold ticket for player in region; the caller reads
// the answer (its body is closed with the test).
func post(t *testing.T, fe, token, player, region string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, fe+"/v1/tickets",
		strings.NewReader(`{"player_id":"`+player+`","mode":"1v1","skill":1650,"region":"`+region+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}
