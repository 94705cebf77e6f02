package matcher

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

type leaseView struct {
	Owner string `json:"owner"`
	Until int64  `json:"until"`
}

// owners reads the leases bucket: shard -> owner, for live leases.
func (e *env) owners(t *testing.T) map[string]string {
	t.Helper()
	kv, err := e.js.KeyValue(t.Context(), e.subj.LeasesBucket())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	keys, err := kv.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		en, err := kv.Get(t.Context(), k)
		if err != nil {
			continue
		}
		var l leaseView
		if json.Unmarshal(en.Value(), &l) == nil && time.Now().UnixMilli() < l.Until {
			out[k] = l.Owner
		}
	}
	return out
}

func (h *worker) held() int {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	return len(h.w.runners)
}

// TestShardsSpreadAndMoveWhenAWorkerDies: three workers share the 12
// shards, each shard leased to one of them; a killed worker's shards are
// leased to the others within the stated bound (WorkerTTL + LeaseRenew,
// about 4 s; the test allows 15 s and logs what it measured).
func TestShardsSpreadAndMoveWhenAWorkerDies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ws []*worker
	for i := range 3 {
		ws = append(ws, e.startWorker(t, Config{WorkerID: fmt.Sprintf("w%d", i)}))
	}
	shards := events.Topology{}.Shards()
	// The first worker may lease every shard before the others' first
	// beats are seen; the shards spread as they are (rendezvous hashing
	// over the live workers), so the test waits for that, not for the
	// first moment every shard has an owner.
	byOwner := map[string]int{}
	testkit.Eventually(t, 15*time.Second, func() bool {
		o := e.owners(t)
		clear(byOwner)
		for _, w := range o {
			byOwner[w]++
		}
		return len(o) == len(shards) && ws[0].held()+ws[1].held()+ws[2].held() == len(shards) && len(byOwner) >= 2
	}, "shards not all owned once, spread over the workers: %v", e.owners(t))
	victim := ws[0]
	for _, w := range ws {
		if byOwner[w.w.ID()] > 0 {
			victim = w
			break
		}
	}
	killed := time.Now()
	victim.kill()
	testkit.Eventually(t, 15*time.Second, func() bool {
		o := e.owners(t)
		for _, w := range o {
			if w == victim.w.ID() {
				return false
			}
		}
		return len(o) == len(shards)
	}, "dead worker's shards did not move: %v", e.owners(t))
	t.Logf("shards of the killed worker owned again %s after the kill", time.Since(killed).Round(100*time.Millisecond))
}

// TestKillOneWorkerMidLoad is the crash test: three workers, tickets
// arriving, one worker killed (no ack, no nak, no release) while its pools
// hold waiting tickets. Every ticket must end matched or expired, none in
// two matches, none stranded in a stream.
func TestKillOneWorkerMidLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Narrow windows that widen fast: tickets wait a little, so pools
	// always hold some when the worker dies; a short max wait ends the odd
	// ones out.
	mf := modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"6s","skill_window":{"initial":3,"per_second":150,"max":400}},
		{"name":"2v2","teams":2,"team_size":2,"max_wait":"6s","skill_window":{"initial":3,"per_second":150,"max":400}}]`)
	var ws []*worker
	for i := range 3 {
		ws = append(ws, e.startWorker(t, Config{WorkerID: fmt.Sprintf("w%d", i), RulesFile: mf}))
	}
	testkit.Eventually(t, 15*time.Second, func() bool { return len(e.owners(t)) == 12 }, "shards not owned")
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())
	res := testkit.Collect(t, e.nc, e.subj.AllResults())

	rng := rand.New(rand.NewPCG(7, 9))
	tiers := []struct {
		name   string
		lo, hi int
	}{{"bronze", 0, 1200}, {"silver", 1200, 1600}, {"gold", 1600, 2000}, {"platinum", 2000, 2400}}
	var ids []string
	publish := func(n int) {
		for range n {
			i := len(ids)
			tr := tiers[rng.IntN(len(tiers))]
			region := []string{"eu", "us", "asia"}[rng.IntN(3)]
			mode := "1v1"
			if i%5 == 0 {
				mode = "2v2"
			}
			id := fmt.Sprintf("t%04d", i)
			ids = append(ids, id)
			e.pub(t, e.subj.Ticket(region, tr.name), fmt.Sprintf(`{"ticket_id":%q,"player_id":"p%04d","skill":%d,"mode":%q}`, id, i, tr.lo+rng.IntN(tr.hi-tr.lo), mode))
			time.Sleep(2 * time.Millisecond)
		}
	}
	publish(300)
	// Kill the worker whose pools hold the most waiting tickets.
	var victim *worker
	most := -1
	for _, w := range ws {
		n := w.waiting()
		if n > most {
			victim, most = w, n
		}
	}
	if most == 0 {
		t.Fatal("no worker holds waiting tickets: the kill would prove nothing")
	}
	t.Logf("killing %s holding %d waiting tickets", victim.w.ID(), most)
	victim.kill()
	publish(300)

	// Every ticket reaches exactly one outcome.
	outcome := func() (map[string][]string, map[string]events.Status) {
		inMatch := map[string][]string{}
		for _, m := range matches(t, allocs()) {
			for _, tk := range m.Tickets {
				if !slices.Contains(inMatch[tk.TicketID], m.MatchID) {
					inMatch[tk.TicketID] = append(inMatch[tk.TicketID], m.MatchID)
				}
			}
		}
		terminal := map[string]events.Status{}
		for _, rs := range results(t, res()) {
			for _, r := range rs {
				if r.Status.Terminal() {
					terminal[r.TicketID] = r.Status
				}
			}
		}
		return inMatch, terminal
	}
	var missing []string
	deadline := time.Now().Add(60 * time.Second) // generous for a starved machine
	for {
		inMatch, terminal := outcome()
		missing = missing[:0]
		for _, id := range ids {
			if len(inMatch[id]) == 0 && terminal[id] != events.StatusExpired {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tickets have no outcome: %v; %d waiting in shards, %d visitors", len(missing), missing,
				testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()), testkit.StreamMsgs(t, e.js, e.subj.OffersStream()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	inMatch, terminal := outcome()
	matched, expired := 0, 0
	for _, id := range ids {
		switch {
		case len(inMatch[id]) > 1:
			t.Errorf("ticket %s in %d matches: %v", id, len(inMatch[id]), inMatch[id])
		case len(inMatch[id]) == 1 && terminal[id] == events.StatusExpired:
			t.Errorf("ticket %s both matched and expired", id)
		case len(inMatch[id]) == 1:
			matched++
		default:
			expired++
		}
	}
	t.Logf("%d tickets: %d matched, %d expired, %d matches", len(ids), matched, expired, len(matches(t, allocs())))
	testkit.Eventually(t, 10*time.Second, func() bool {
		return testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()) == 0 && testkit.StreamMsgs(t, e.js, e.subj.OffersStream()) == 0
	}, "tickets stranded: %d waiting in shards, %d visitors", testkit.StreamMsgs(t, e.js, e.subj.TicketsStream()), testkit.StreamMsgs(t, e.js, e.subj.OffersStream()))
}

func (h *worker) waiting() int {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	n := 0
	for _, r := range h.w.runners {
		n += r.waiting()
	}
	return n
}
