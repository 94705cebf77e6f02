package stack_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/dev/stack"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// ctlRules is the rule set the CLI's stack starts with: 1v1 alone, so a
// ticket of mode "duel" is refused until ctlRulesFixed adds it.
const (
	ctlRules      = `{"modes": [{"name": "1v1", "teams": 2, "team_size": 1, "max_wait": "5m"}]}`
	ctlRulesFixed = `{"modes": [{"name": "1v1", "teams": 2, "team_size": 1, "max_wait": "5m"},
	                            {"name": "duel", "teams": 2, "team_size": 1, "max_wait": "5m"}]}`
)

// ctlTicket is what the tests read of `ticket -json`.
type ctlTicket struct {
	Status  string          `json:"status"`
	Players []string        `json:"players"`
	Shard   string          `json:"shard"`
	Claim   string          `json:"claim"`
	Record  json.RawMessage `json:"record"`
	Results []events.Result `json:"results"`
}

// TestCtl runs every command of the operator CLI (cmd/quickmatch) against
// the whole stack as the operator user: it shows tickets where the services
// keep them, cancels as the frontend does, and replays dead letters.
func TestCtl(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rules, []byte(ctlRules), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, func(c *stack.Config) {
		c.Env = append(c.Env, "RULES="+rules, "RULES_RELOAD=1s")
		c.GamePorts, c.MatcherOpsPorts = []int{0}, []int{0}
	})
	ctl := newCtl(t, s)
	nc := testkit.ConnectURL(t, s.OperatorURL(), nats.MaxReconnects(0))
	js := testkit.JetStream(t, nc)
	pub := events.NewPublisher(js, events.Subjects{})

	// Two players matched over NATS: something for every read to show.
	for _, p := range []string{"ctl-a", "ctl-b"} {
		if _, err := pub.Ticket(t.Context(), "eu", "gold", events.Ticket{TicketID: "t-" + p, PlayerID: p, Mode: "1v1", Skill: 1700}); err != nil {
			t.Fatal(err)
		}
	}
	var a ctlTicket
	testkit.Eventually(t, 30*time.Second, func() bool {
		return ctl.json(t, &a, "ticket", "-json", "t-ctl-a") && a.Status == "assigned"
	}, "ticket t-ctl-a not assigned: %+v", &a)

	t.Run("ticket", func(t *testing.T) { ctlTicketCase(t, ctl, a) })
	t.Run("player", func(t *testing.T) { ctlPlayer(t, ctl, a) })
	t.Run("match", func(t *testing.T) { ctlMatch(t, ctl, a) })
	t.Run("queue", func(t *testing.T) { ctlQueue(t, ctl, pub) })
	t.Run("cancel", func(t *testing.T) { ctlCancel(t, ctl, s, pub) })
	t.Run("deadletters", func(t *testing.T) { ctlDeadLetters(t, ctl, s, js, rules) })
}

// ctlTicketCase: a NATS ticket's claim, players, shard and results, the
// join token redacted; the table says the same.
func ctlTicketCase(t *testing.T, ctl ctlRunner, a ctlTicket) {
	matchID, isMatch := events.OwnerMatchID(a.Claim)
	if !isMatch || a.Shard != "eu.gold" || len(a.Players) != 1 || a.Players[0] != "ctl-a" || string(a.Record) != "" {
		t.Fatalf("ticket t-ctl-a: %+v, want claimed by a match, shard eu.gold, player ctl-a, no frontend record", a)
	}
	i := slices.IndexFunc(a.Results, func(r events.Result) bool { return r.Status == events.StatusAssigned })
	if i < 0 || a.Results[i].MatchID != matchID || a.Results[i].Assignment == nil || a.Results[i].Assignment.JoinToken != "(redacted)" ||
		strings.Contains(a.Results[i].Assignment.URL, "token") {
		t.Fatalf("ticket t-ctl-a's results %+v: want an assigned one of match %s with its join token redacted", a.Results, matchID)
	}
	out := ctl.must(t, "ticket", "t-ctl-a")
	for _, want := range []string{"ticket t-ctl-a", "status:", "assigned", "came by:", "NATS", a.Claim, "results:", "ASSIGNED"} {
		if !strings.Contains(strings.ToUpper(out), strings.ToUpper(want)) {
			t.Errorf("ticket table lacks %q:\n%s", want, out)
		}
	}
	if _, err := ctl.run(t, "ticket", "t-nobody"); err == nil || !strings.Contains(err.Error(), "nothing stored names it") {
		t.Errorf("an unknown ticket: err = %v, want nothing stored", err)
	}
}

// ctlPlayer: a player's tickets and history, with the live ticket.
func ctlPlayer(t *testing.T, ctl ctlRunner, a ctlTicket) {
	var p struct {
		Live    *events.LiveTicket `json:"live"`
		Tickets []struct {
			TicketID string `json:"ticket_id"`
			Status   string `json:"status"`
			MatchID  string `json:"match_id"`
		} `json:"tickets"`
		Results []events.Result `json:"results"`
	}
	if !ctl.json(t, &p, "player", "-json", "ctl-b") {
		t.Fatal("player ctl-b failed")
	}
	matchID, _ := events.OwnerMatchID(a.Claim)
	if p.Live == nil || p.Live.TicketID != "t-ctl-b" || len(p.Tickets) != 1 || p.Tickets[0].Status != "assigned" || p.Tickets[0].MatchID != matchID {
		t.Fatalf("player ctl-b: %+v, want live ticket t-ctl-b, assigned in match %s", p, matchID)
	}
	statuses := ""
	for _, r := range p.Results {
		statuses += string(r.Status) + " "
	}
	if !strings.Contains(statuses, "matched assigned") {
		t.Errorf("player ctl-b's history is %q, want matched then assigned", statuses)
	}
	if out := ctl.must(t, "player", "ctl-b"); !strings.Contains(out, "live ticket:") || !strings.Contains(out, "history:") || strings.Count(out, "t-ctl-b") < 3 {
		t.Errorf("player table:\n%s", out)
	}
}

// ctlMatch: the match, its decision, claims and its allocation.
func ctlMatch(t *testing.T, ctl ctlRunner, a ctlTicket) {
	matchID, _ := events.OwnerMatchID(a.Claim)
	var m struct {
		Match      *events.Match     `json:"match"`
		Decision   string            `json:"decision"`
		Sent       bool              `json:"sent"`
		Claims     map[string]string `json:"claims"`
		Allocation struct {
			Server *struct{ Name, Address string } `json:"server"`
		} `json:"allocation"`
	}
	// Found through a ticket's claim, which carries the match (a 1v1's
	// match stores no record).
	if !ctl.json(t, &m, "match", "-json", "t-ctl-a") {
		t.Fatal("match failed")
	}
	if m.Match == nil || m.Match.MatchID != matchID || len(m.Match.Tickets) != 2 || m.Decision != "published" || !m.Sent ||
		m.Claims["t-ctl-a"] != a.Claim || m.Claims["t-ctl-b"] != a.Claim || m.Allocation.Server == nil || m.Allocation.Server.Name == "" {
		t.Fatalf("match of t-ctl-a: %+v, want %s, published, both claims its own and a server", m, matchID)
	}
	if out := ctl.must(t, "match", "t-ctl-a"); !strings.Contains(out, "server "+m.Allocation.Server.Name+" at ") || !strings.Contains(out, "t-ctl-b") {
		t.Errorf("match table:\n%s", out)
	}
	// By its id: its decision and allocation.
	if out := ctl.must(t, "match", matchID); !strings.Contains(out, "published") || !strings.Contains(out, "server "+m.Allocation.Server.Name+" at ") {
		t.Errorf("match table of %s:\n%s", matchID, out)
	}
}

// ctlQueue: a ticket waiting alone is counted in its shard's queue (the
// matcher's figures), and the matched pair's waits give percentiles.
func ctlQueue(t *testing.T, ctl ctlRunner, pub *events.Publisher) {
	if _, err := pub.Ticket(t.Context(), "eu", "platinum", events.Ticket{TicketID: "t-ctl-q", PlayerID: "ctl-q", Mode: "1v1", Skill: 2100}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return queueWaiting(t, ctl, "eu.platinum") == 1 },
		"eu.platinum 1v1 does not show one waiting ticket")
	if w := queueRow(t, ctl, "eu.gold", "10m").Waited; w == nil || w.Tickets < 2 {
		t.Fatalf("eu.gold 1v1 matched waits: %+v, want the matched pair's", w)
	}
	out := ctl.must(t, "queue", "-window", "10m")
	for _, want := range []string{"EXPECTED WAIT", "P99", "eu.platinum", "eu.gold", "from the match records"} {
		if !strings.Contains(out, want) {
			t.Errorf("queue table lacks %q:\n%s", want, out)
		}
	}
}

// ctlCancel: tickets taken over HTTP and NATS are cancelled as the frontend
// cancels (it then answers cancelled, with the reason) and their shard
// drops them; a second cancel answers as the first; a matched one fails.
func ctlCancel(t *testing.T, ctl ctlRunner, s *stack.Stack, pub *events.Publisher) {
	fe := s.FrontendURL()
	tok := devToken(t, fe, "ctl-c")
	var v ticketView
	if code := httpJSON(t, tok, "POST", fe+"/v1/tickets", `{"player_id":"ctl-c","mode":"1v1","skill":1300,"region":"eu"}`, &v); code != 202 {
		t.Fatalf("POST ctl-c: %d %+v", code, v)
	}
	if _, err := pub.Ticket(t.Context(), "us", "silver", events.Ticket{TicketID: "t-ctl-d", PlayerID: "ctl-d", Mode: "1v1", Skill: 1300}); err != nil {
		t.Fatal(err)
	}
	var d ctlTicket
	testkit.Eventually(t, 20*time.Second, func() bool { return ctl.json(t, &d, "ticket", "-json", "t-ctl-d") && d.Shard == "us.silver" },
		"t-ctl-d was not taken in: %+v", &d)
	testkit.Eventually(t, 20*time.Second, func() bool { return queueWaiting(t, ctl, "us.silver") == 1 }, "us.silver does not count t-ctl-d")
	var c ctlTicket
	if !ctl.json(t, &c, "ticket", "-json", v.TicketID) || string(c.Record) == "" || c.Shard != "eu.silver" {
		t.Fatalf("HTTP ticket %s: %+v, want its frontend record and shard eu.silver", v.TicketID, c)
	}
	out := ctl.must(t, "cancel", "-reason", "abuse report 42", v.TicketID)
	if !strings.Contains(out, "cancelled") || !strings.Contains(out, "abuse report 42") {
		t.Fatalf("cancel:\n%s", out)
	}
	if code := httpJSON(t, tok, "GET", fe+"/v1/tickets/"+v.TicketID, "", &v); code != 200 || v.Status != "cancelled" || v.Reason != "abuse report 42" {
		t.Fatalf("the frontend after the cancel: %d %+v, want cancelled with the reason", code, v)
	}
	var done struct{ Cancelled bool }
	if !ctl.json(t, &done, "cancel", "-json", "t-ctl-d") || !done.Cancelled {
		t.Fatalf("cancel t-ctl-d: %+v", done)
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		return ctl.json(t, &d, "player", "-json", "ctl-d") && strings.Contains(fmt.Sprint(d.Results), "cancelled")
	}, "ctl-d was not told: %+v", &d)
	testkit.Eventually(t, 20*time.Second, func() bool { return queueWaiting(t, ctl, "us.silver") == 0 }, "us.silver kept t-ctl-d after its cancel")
	if out := ctl.must(t, "cancel", v.TicketID); !strings.Contains(out, "cancelled before") {
		t.Errorf("a second cancel, as the frontend answers one:\n%s", out)
	}
	if _, err := ctl.run(t, "cancel", "t-ctl-a"); err == nil || !strings.Contains(err.Error(), "already has an outcome: matched") {
		t.Errorf("cancel of a matched ticket: err = %v, want already has an outcome", err)
	}
	var a ctlTicket
	if !ctl.json(t, &a, "ticket", "-json", "t-ctl-a") || a.Status != "assigned" || !strings.HasPrefix(a.Claim, "match:") {
		t.Errorf("t-ctl-a after a refused cancel: %+v", a)
	}
}

// ctlQueueRow is a shard's 1v1 row of `queue -json`.
type ctlQueueRow struct {
	Shard, Mode string
	Stats       *events.QueueStats `json:"stats"`
	Waited      *struct {
		Tickets int `json:"tickets"`
	} `json:"matched_wait"`
}

// queueRow is shard's 1v1 row of `queue -json -window window`, or empty.
func queueRow(t *testing.T, ctl ctlRunner, shard, window string) ctlQueueRow {
	var q struct {
		Rows []ctlQueueRow `json:"shards"`
	}
	if ctl.json(t, &q, "queue", "-json", "-window", window) {
		for _, r := range q.Rows {
			if r.Shard == shard && r.Mode == "1v1" {
				return r
			}
		}
	}
	return ctlQueueRow{}
}

// queueWaiting is the waiting tickets of shard's 1v1, -1 when unknown.
func queueWaiting(t *testing.T, ctl ctlRunner, shard string) int {
	if r := queueRow(t, ctl, shard, "1ms"); r.Stats != nil { // no match in 1 ms: an empty window
		return r.Stats.Waiting
	}
	return -1
}

// ctlDeadLetters: three tickets of a mode the rule set lacks are
// dead-lettered, published as a game backend does (a ticket id, also their
// Nats-Msg-Id); one of them its player had cancelled meanwhile (its claim
// taken first), so it is not replayable, and show says why. Once the mode
// is added, the others are replayed (ctlReplays).
func ctlDeadLetters(t *testing.T, ctl ctlRunner, s *stack.Stack, js jetstream.JetStream, rules string) {
	pub := events.NewPublisher(js, events.Subjects{})
	claims, err := events.NewClaims(t.Context(), js, events.Subjects{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := claims.Claim(t.Context(), "t-ctl-duel3", events.OwnerCancelled); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"ctl-duel1", "ctl-duel2", "ctl-duel3"} {
		if _, err := pub.Ticket(t.Context(), "eu", "gold", events.Ticket{TicketID: "t-" + p, PlayerID: p, Mode: "duel", Skill: 1650}); err != nil {
			t.Fatal(err)
		}
	}
	seqs := map[string]uint64{}
	var list []struct {
		Seq     uint64            `json:"seq"`
		Record  events.DeadLetter `json:"record"`
		Players []string          `json:"players"`
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		if !ctl.json(t, &list, "deadletters", "list", "-json") {
			return false
		}
		for _, d := range list {
			if len(d.Players) == 1 {
				seqs[d.Players[0]] = d.Seq
			}
		}
		return seqs["ctl-duel1"] > 0 && seqs["ctl-duel2"] > 0 && seqs["ctl-duel3"] > 0
	}, "the dead letters are not all listed: %+v", &list)
	seq := func(p string) string { return strconv.FormatUint(seqs[p], 10) }
	out := ctl.must(t, "deadletters", "show", seq("ctl-duel1"))
	for _, want := range []string{`unknown mode "duel"`, "subject:", "matchmaking.eu.gold", "replay:", "yes, as ticket t-ctl-duel1-r" + seq("ctl-duel1")} {
		if !strings.Contains(out, want) {
			t.Errorf("deadletters show lacks %q:\n%s", want, out)
		}
	}
	var cancelled struct {
		Replayable *bool  `json:"replayable"`
		WhyNot     string `json:"why_not"`
	}
	if !ctl.json(t, &cancelled, "deadletters", "show", "-json", seq("ctl-duel3")) || cancelled.Replayable == nil || *cancelled.Replayable ||
		!strings.Contains(cancelled.WhyNot, "ended cancelled") {
		t.Errorf("show of a dead letter whose ticket was cancelled: %+v, want not replayable, saying why", cancelled)
	}

	if err := os.WriteFile(rules, []byte(ctlRulesFixed), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		for line := range strings.Lines(s.Output()) {
			if strings.HasPrefix(line, "matcher") && strings.Contains(line, "rule set reloaded") && strings.Contains(line, "duel") {
				return true
			}
		}
		return false
	}, "the matcher did not reload the fixed rule set")
	ctlReplays(t, ctl, pub, seq)
}

// ctlReplays: a dead letter whose ticket was cancelled is not replayed,
// nor one whose player has a live ticket now (the replay would supersede
// it) until that ticket is cancelled; then the replays are matched
// together, and a second replay is refused for the first's traces (its
// claim), not only for the stream's duplicate window.
func ctlReplays(t *testing.T, ctl ctlRunner, pub *events.Publisher, seq func(string) string) {
	if _, err := ctl.run(t, "deadletters", "replay", seq("ctl-duel3")); err == nil || !strings.Contains(err.Error(), "ended cancelled") {
		t.Errorf("replay of a cancelled ticket's dead letter: err = %v, want refused", err)
	}
	if _, err := pub.Ticket(t.Context(), "us", "gold", events.Ticket{TicketID: "t-ctl-duel1-now", PlayerID: "ctl-duel1", Mode: "duel", Skill: 1650}); err != nil {
		t.Fatal(err)
	}
	var now ctlTicket
	testkit.Eventually(t, 20*time.Second, func() bool { return ctl.json(t, &now, "ticket", "-json", "t-ctl-duel1-now") && now.Shard == "us.gold" },
		"t-ctl-duel1-now was not taken in: %+v", &now)
	if _, err := ctl.run(t, "deadletters", "replay", seq("ctl-duel1")); err == nil || !strings.Contains(err.Error(), "has a live ticket, t-ctl-duel1-now") {
		t.Fatalf("replay for a player with a live ticket: err = %v, want refused", err)
	}
	ctl.must(t, "cancel", "t-ctl-duel1-now")

	replays := map[string]string{}
	for _, p := range []string{"ctl-duel1", "ctl-duel2"} {
		var r struct {
			TicketID string `json:"ticket_id"`
			Original string `json:"original_ticket_id"`
		}
		if !ctl.json(t, &r, "deadletters", "replay", "-json", seq(p)) || r.Original != "t-"+p || r.TicketID == r.Original {
			t.Fatalf("replay of %s's dead letter: %+v", p, r)
		}
		replays[p] = r.TicketID
	}
	var one, two ctlTicket
	testkit.Eventually(t, 30*time.Second, func() bool {
		return ctl.json(t, &one, "ticket", "-json", replays["ctl-duel1"]) && ctl.json(t, &two, "ticket", "-json", replays["ctl-duel2"]) &&
			one.Status == "assigned" && two.Status == "assigned"
	}, "the replayed tickets were not assigned: %+v %+v", &one, &two)
	if one.Claim != two.Claim {
		t.Errorf("the replayed tickets were matched apart: %s and %s", one.Claim, two.Claim)
	}
	if _, err := ctl.run(t, "deadletters", "replay", seq("ctl-duel1")); err == nil || !strings.Contains(err.Error(), "replayed already as ticket "+replays["ctl-duel1"]+": its claim is "+one.Claim) {
		t.Errorf("a second replay: err = %v, want replayed already, for the first one's claim", err)
	}
	var orig ctlTicket
	if !ctl.json(t, &orig, "ticket", "-json", "t-ctl-duel1") || orig.Status != "failed" || orig.Claim != events.OwnerFailed {
		t.Errorf("the dead-lettered ticket after its replay: %+v, want failed as it was", orig)
	}
}
