package matcher

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

// backfillRules: a 2v2 that accepts backfill and keeps platforms apart,
// and a 1v1 that does not accept it.
const backfillRules = `{"attributes": {"platform": {"kind": "string", "values": ["pc", "xbox"]}},
"modes": [
  {"name": "2v2", "teams": 2, "team_size": 2, "max_wait": "2m", "backfill": true,
   "rules": [{"kind": "equal", "attribute": "platform"}]},
  {"name": "1v1", "teams": 2, "team_size": 1, "max_wait": "2m"}]}`

func backfillRulesFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(p, []byte(backfillRules), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// backfillRunner is a runner of shard eu.gold of a worker bound to its
// buckets but not running, under backfillRules: a test drives its fills
// and settles its commits by hand, as two owners of one shard would (a
// shard moving).
func (e *env) backfillRunner(t *testing.T) *runner {
	t.Helper()
	js := testkit.JetStream(t, testkit.Connect(t, e.srv))
	w, err := New(Config{RulesFile: backfillRulesFile(t)}, js, e.subj, slog.New(slog.NewTextHandler(testLog(), nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.bindState(t.Context()); err != nil {
		t.Fatal(err)
	}
	return newRunner(w, events.Shard{Region: "eu", Tier: "gold"})
}

// pc is a ticket's or a room's attributes: the pc platform.
var pc = &events.Attributes{Strings: map[string]string{"platform": "pc"}}

// waiting pools ticket id of player in r's 2v2 pool, live, on pc: its
// message answered on ack.<id>.
func (e *env) waiting(t *testing.T, r *runner, id, player string, seq uint64, created time.Time) *pool.Entry {
	t.Helper()
	e.liveTicket(t, player, id, created)
	p := r.pools["2v2"]
	en := &pool.Entry{TicketID: id, Players: []string{player}, Skill: 1650, Created: created.UnixNano(), Seq: seq, Ack: "ack." + id}
	if err := en.SetAttributes(p.Mode(), pc); err != nil {
		t.Fatal(err)
	}
	p.Add(en)
	return en
}

// hold makes r hold request req, its message answered on ack.<as>.
func hold(r *runner, req events.Backfill, as string) *heldBackfill {
	h := &heldBackfill{req: req, ack: "ack." + as, seq: 1}
	r.backfills[req.MatchID] = h
	return h
}

// roomRequest is room r1's request id (Ask 1): one free seat on team 1
// of its 2v2.
func roomRequest(id string, created time.Time) events.Backfill {
	return events.Backfill{SchemaVersion: events.SchemaVersion, BackfillID: id, MatchID: "r1", Ask: 1, Mode: "2v2", Region: "eu",
		Tier: "gold", Skill: 1650, Seats: []int{0, 1}, Attributes: pc, CreatedAt: created}
}

// fillAndSettle tries r's fill of its request id, if it still holds it,
// and takes the commit's outcome back as the runner would.
func fillAndSettle(t *testing.T, r *runner, id string, now time.Time) {
	t.Helper()
	h, ok := holding(r, id)
	if !ok || h.filling != "" {
		return
	}
	r.fillBackfill(t.Context(), r.pools["2v2"], h, now)
	if h.filling == "" {
		return // nothing fit
	}
	select {
	case o := <-r.committed:
		r.settleCommit(t.Context(), o, false)
	case <-time.After(10 * time.Second):
		t.Fatal("the fill's commit did not return")
	}
}

// holding is r's request id, if r holds it.
func holding(r *runner, id string) (*heldBackfill, bool) {
	for _, h := range r.backfills {
		if h.req.BackfillID == id {
			return h, true
		}
	}
	return nil, false
}

// acked are the answers sent on ack.<id>, by id.
func acked(msgs []*nats.Msg) map[string][]string {
	out := map[string][]string{}
	for _, m := range msgs {
		id := strings.TrimPrefix(m.Subject, "ack.")
		out[id] = append(out[id], string(m.Data))
	}
	return out
}

// TestBackfillFillsOnceUnderTwoOwners: two owners of shard eu.gold hold
// room r1's request for one seat at once (the shard moved and the old
// owner still runs), each with a ticket that fits. Both fill it at the
// same moment; the request's claim, taken with the tickets', lets one
// match fill it: one match is published, on the room's team, the other
// owner's ticket is free to wait, and both owners let the request go.
func TestBackfillFillsOnceUnderTwoOwners(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
			acks := testkit.Collect(t, e.nc, "ack.>")
			created := time.Now().UTC().Add(-time.Second)
			ra, rb := e.backfillRunner(t), e.backfillRunner(t)
			e.waiting(t, ra, "ta", "a", 1, created)
			e.waiting(t, rb, "tb", "b", 2, created)
			req := roomRequest("r1-b1", created)
			hold(ra, req, "ra")
			hold(rb, req, "rb")
			now := time.Now()
			ha, hb := ra.backfills[req.MatchID], rb.backfills[req.MatchID]
			ra.fillBackfill(t.Context(), ra.pools["2v2"], ha, now)
			rb.fillBackfill(t.Context(), rb.pools["2v2"], hb, now)
			for _, r := range []*runner{ra, rb} {
				select {
				case o := <-r.committed:
					r.settleCommit(t.Context(), o, false)
				case <-time.After(10 * time.Second):
					t.Fatal("a fill's commit did not return")
				}
			}
			// An owner that could not tell yet (the other fill not out)
			// tries again: its claim meets the other's, and it lets go.
			for range 3 {
				fillAndSettle(t, ra, req.BackfillID, time.Now())
				fillAndSettle(t, rb, req.BackfillID, time.Now())
			}
			testkit.Eventually(t, 5*time.Second, func() bool { return len(allocs()) >= 1 }, "no match filled the request")
			time.Sleep(300 * time.Millisecond) // room for a second match to show
			ms := matches(t, allocs())
			ids := map[string]bool{}
			for _, m := range ms {
				ids[m.MatchID] = true
			}
			if len(ids) != 1 {
				t.Fatalf("%d matches filled one request: %+v", len(ids), ms)
			}
			m := ms[0]
			if m.Backfill == nil || m.Backfill.BackfillID != req.BackfillID || m.Backfill.MatchID != "r1" ||
				len(m.Tickets) != 1 || m.Tickets[0].Team != 1 || !m.AcceptsBackfill {
				t.Fatalf("the fill: %+v", m)
			}
			c := e.claims(t)
			if own, _ := c.Owner(t.Context(), events.BackfillClaimKey(req.BackfillID)); own != events.MatchOwner(m.MatchID) {
				t.Fatalf("the request is claimed by %q, want the match that filled it", own)
			}
			winner, loser := "ta", "tb"
			if m.Tickets[0].TicketID == "tb" {
				winner, loser = loser, winner
			}
			if own, _ := c.Owner(t.Context(), winner); own != events.MatchOwner(m.MatchID) {
				t.Errorf("%s claimed by %q", winner, own)
			}
			if own, _ := c.Owner(t.Context(), loser); own != "" {
				t.Errorf("%s, in no match, claimed by %q", loser, own)
			}
			for _, r := range []*runner{ra, rb} {
				if _, held := holding(r, req.BackfillID); held {
					t.Errorf("an owner still holds the filled request")
				}
			}
			got := acked(acks())
			for _, who := range []string{"ra", "rb"} {
				if len(got[who]) == 0 || got[who][0] != string(ackDone) {
					t.Errorf("owner %s answered the request %v, want an ack", who, got[who])
				}
			}
			if len(got[loser]) != 0 {
				t.Errorf("%s's message answered %v while it waits", loser, got[loser])
			}
		})
	}
}

// TestBackfillNeverPutsATicketInTwoMatches: ticket ta is in a 2v2 match
// one owner forms and, at the same moment, in the fill of room r1's
// request another owner makes. ta ends in one of them; the other is not
// published with it.
func TestBackfillNeverPutsATicketInTwoMatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	created := time.Now().UTC().Add(-time.Second)
	ra, rb := e.backfillRunner(t), e.backfillRunner(t)
	e.waiting(t, ra, "ta", "a", 1, created)
	var four []*pool.Entry
	for i, id := range []string{"ta", "tc", "td", "te"} {
		four = append(four, e.waiting(t, rb, id, strings.TrimPrefix(id, "t"), uint64(i+1), created))
	}
	req := roomRequest("r1-b1", created)
	h := hold(ra, req, "ra")
	p := rb.pools["2v2"]
	for _, en := range four {
		p.Remove(en.TicketID)
	}
	now := time.Now()
	ra.fillBackfill(t.Context(), ra.pools["2v2"], h, now)
	rb.formMatch(t.Context(), p, [][]*pool.Entry{four[:2], four[2:]}, now)
	rb.commitFormed(t.Context()) // as the run loop does at the end of its turn
	for _, r := range []*runner{ra, rb} {
		select {
		case o := <-r.committed:
			r.settleCommit(t.Context(), o, false)
		case <-time.After(10 * time.Second):
			t.Fatal("a commit did not return")
		}
	}
	time.Sleep(300 * time.Millisecond)
	// A match is published again by whoever recovers it (the same
	// message id, stored once): count matches, not publishes.
	var with []string
	for _, m := range matches(t, allocs()) {
		for _, tk := range m.Tickets {
			if tk.TicketID == "ta" && !slices.Contains(with, m.MatchID) {
				with = append(with, m.MatchID)
			}
		}
	}
	if len(with) != 1 {
		t.Fatalf("ta published in %d matches: %v", len(with), with)
	}
	if own, _ := e.claims(t).Owner(t.Context(), "ta"); own != events.MatchOwner(with[0]) {
		t.Fatalf("ta claimed by %q, published in %s", own, with[0])
	}
}

// TestBackfillOfAStaleTicketKeepsTheRequest: the ticket that would fill
// the request is no longer its player's live ticket: the fill is undone,
// and the request's claim is given back with the fresh tickets', so the
// request is filled by the next ticket that fits.
func TestBackfillOfAStaleTicketKeepsTheRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	created := time.Now().UTC().Add(-2 * time.Second)
	r := e.backfillRunner(t)
	e.waiting(t, r, "ta", "a", 1, created)
	e.liveTicket(t, "a", "tnew", created.Add(time.Second)) // a queued again: ta is stale
	req := roomRequest("r1-b1", created)
	hold(r, req, "r")
	fillAndSettle(t, r, req.BackfillID, time.Now())
	if n := len(allocs()); n != 0 {
		t.Fatalf("a fill with a stale ticket published %d times", n)
	}
	if own, _ := e.claims(t).Owner(t.Context(), events.BackfillClaimKey(req.BackfillID)); own != "" {
		t.Fatalf("the request is claimed by %q after its fill was undone", own)
	}
	if h, held := holding(r, req.BackfillID); !held || h.filling != "" {
		t.Fatal("the request was let go with no match filling it")
	}
	e.waiting(t, r, "tb", "b", 2, created)
	fillAndSettle(t, r, req.BackfillID, time.Now())
	testkit.Eventually(t, 5*time.Second, func() bool { return len(allocs()) == 1 }, "the request was not filled by the next ticket")
	if m := matches(t, allocs())[0]; m.Backfill == nil || len(m.Tickets) != 1 || m.Tickets[0].TicketID != "tb" {
		t.Fatalf("filled with %+v", m)
	}
	if _, held := holding(r, req.BackfillID); held {
		t.Fatal("the filled request is still held")
	}
}

// TestBackfillThroughTheStream: a running worker takes room r1's request
// from its shard's backfills consumer and fills its one seat on team 1
// with the ticket that fits by the rules (pc, not the xbox player nearer
// in skill); the 2v2 does not form around the rest, the request is
// acked, and requests it cannot fill (a mode without backfill, a room
// of another shape, a request past its mode's max wait) are let go.
func TestBackfillThroughTheStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	dls := testkit.Collect(t, e.nc, e.subj.AllDeadLetters())
	e.startWorker(t, Config{RulesFile: backfillRulesFile(t)})
	for _, tk := range []string{
		`{"ticket_id":"tx","player_id":"x","mode":"2v2","skill":1650,"attributes":{"strings":{"platform":"xbox"}}}`,
		`{"ticket_id":"tp","player_id":"p","mode":"2v2","skill":1700,"attributes":{"strings":{"platform":"pc"}}}`,
	} {
		e.pub(t, e.subj.Ticket("eu", "gold"), tk)
	}
	time.Sleep(300 * time.Millisecond) // both waiting
	pub := events.NewPublisher(e.js, e.subj)
	now := time.Now().UTC()
	bad := map[string]events.Backfill{}
	for name, edit := range map[string]func(*events.Backfill){
		"no backfill in 1v1": func(b *events.Backfill) { b.Mode = "1v1" },
		"three teams":        func(b *events.Backfill) { b.Seats = []int{0, 1, 0} },
		"another shard":      func(b *events.Backfill) { b.Tier = "silver" },
	} {
		b := roomRequest("bad-"+strings.ReplaceAll(name, " ", "-"), now)
		edit(&b)
		bad[name] = b
		data, _ := json.Marshal(b)
		if _, err := e.js.Publish(t.Context(), e.subj.Backfill("eu", "gold"), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Backfill(t.Context(), roomRequest("old-b1", now.Add(-3*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := pub.Backfill(t.Context(), roomRequest("r1-b1", now)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		return len(allocs()) == 1 && testkit.StreamMsgs(t, e.js, e.subj.BackfillsStream()) == 0
	}, "request not filled and let go: %d matches", len(allocs()))
	m := matches(t, allocs())[0]
	if m.Backfill == nil || m.Backfill.BackfillID != "r1-b1" || m.Backfill.MatchID != "r1" || len(m.Tickets) != 1 ||
		m.Tickets[0].TicketID != "tp" || m.Tickets[0].Team != 1 || m.Mode != "2v2" || m.Region != "eu" || m.Tier != "gold" {
		t.Fatalf("the fill: %+v", m)
	}
	if m.Tickets[0].Attributes == nil || m.Tickets[0].Attributes.Strings["platform"] != "pc" {
		t.Fatalf("the fill's ticket lost its attributes: %+v", m.Tickets[0])
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(dls()) == len(bad) }, "%d dead letters for %d bad requests", len(dls()), len(bad))
	for _, msg := range dls() {
		var d events.DeadLetter
		if err := json.Unmarshal(msg.Data, &d); err != nil || d.Source != Source || !strings.Contains(d.Reason, "invalid backfill") {
			t.Errorf("dead letter %s: %v", msg.Data, err)
		}
	}
	if own, _ := e.claims(t).Owner(t.Context(), "tx"); own != "" {
		t.Fatalf("the xbox ticket was claimed by %q", own)
	}
}
