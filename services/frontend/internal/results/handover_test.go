package results

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// handingTracker runs a tracker that hands over pending at its end and
// sends what it takes to took; log is what it logs.
func handingTracker(t *testing.T, srv *server.Server, pending []string, opts ...nats.Option) (took <-chan []string, stop func(), log *testkit.SyncBuffer) {
	t.Helper()
	ch := make(chan []string, 16)
	log = &testkit.SyncBuffer{}
	tr, nc, stop := runTrackerWith(t, srv, 0, func(tr *Tracker) {
		tr.log = slog.New(slog.NewTextHandler(log, nil))
		tr.SetHandover(func(ids []string) { ch <- ids }, func() []string { return pending })
	}, opts...)
	subscribed(t, tr, nc)
	return ch, stop, log
}

// subscribed waits until tr's Run has made its subscriptions and the
// server holds them: Run serves a Track once it made them, and a flush
// after is answered once the server has them.
func subscribed(t *testing.T, tr *Tracker, nc *nats.Conn) {
	t.Helper()
	if err := tr.Track(t.Context(), &events.Ticket{TicketID: "warm", PlayerID: "warm"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// tookAll gathers what the trackers took until want tickets came, 5 s at
// most, and then for a moment more (a ticket taken twice).
func tookAll(t *testing.T, want int, took ...<-chan []string) map[string]int {
	t.Helper()
	got := map[string]int{}
	n := 0
	deadline := time.After(5 * time.Second)
	var settle <-chan time.Time
	for {
		var ids []string
		select {
		case ids = <-took[0]:
		case ids = <-took[len(took)-1]:
		case <-settle:
			return got
		case <-deadline:
			t.Fatalf("took %d tickets of %d", n, want)
		}
		for _, id := range ids {
			got[id]++
			n++
		}
		if n >= want && settle == nil {
			settle = time.After(300 * time.Millisecond)
		}
	}
}

// TestAStoppingFrontendHandsOverToOneOther: with the frontends' NATS
// user (deploy/nats/nats.conf), a frontend that stops hands the tickets
// its API would ask about to one of the others (a queue group), each
// ticket once, in messages of at most events.MaxHandoverTickets; it
// takes none of its own.
func TestAStoppingFrontendHandsOverToOneOther(t *testing.T) {
	srv := configuredServer(t)
	pending := make([]string, events.MaxHandoverTickets+5)
	for i := range pending {
		pending[i] = fmt.Sprintf("t%d", i)
	}
	a, stopA, aLog := handingTracker(t, srv, pending, frontendUser...)
	b, _, _ := handingTracker(t, srv, nil, frontendUser...)
	c, _, _ := handingTracker(t, srv, nil, frontendUser...)
	stopA()
	if l := aLog.String(); !strings.Contains(l, "handed over the tickets of lost clients") || !strings.Contains(l, fmt.Sprintf("tickets=%d", len(pending))) {
		t.Errorf("the stopping frontend logged %q, want every ticket handed over", l)
	}
	got := tookAll(t, len(pending), b, c)
	for _, id := range pending {
		if got[id] != 1 {
			t.Errorf("ticket %s taken %d times, want once", id, got[id])
		}
	}
	if len(got) != len(pending) {
		t.Errorf("took %d tickets, want %d", len(got), len(pending))
	}
	select {
	case ids := <-a:
		t.Errorf("the stopping frontend took %d of its own tickets", len(ids))
	default:
	}
}

// TestAHandoverNoOneTakesIsLoggedSo: the handover of the last frontend
// (no other to take it), or of one whose others do not answer (a version
// before handovers were answered, in a mixed rollout, whose question
// handler answers the handover as a question), says that its tickets
// were not handed over. Before, a publish that went nowhere logged
// "handed over"; the first answer to a request would be the question
// handler's.
func TestAHandoverNoOneTakesIsLoggedSo(t *testing.T) {
	t.Parallel()
	pending := []string{"t1", "t2", "t3"}
	t.Run("no other frontend", func(t *testing.T) {
		t.Parallel()
		srv := testkit.RunServer(t)
		_, stop, log := handingTracker(t, srv, pending)
		stop()
		if l := log.String(); !strings.Contains(l, "no other frontend takes handovers") || !strings.Contains(l, "tickets=3") {
			t.Errorf("logged %q, want the 3 tickets not handed over", l)
		}
	})
	t.Run("an older frontend", func(t *testing.T) {
		t.Parallel()
		srv := testkit.RunServer(t)
		old := testkit.Connect(t, srv)
		// It takes handovers without answering, and its question
		// handler answers every request under follows.*.
		if _, err := old.QueueSubscribe(events.Subjects{}.FollowsHandover(), events.FollowsHandoverQueue, func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		if _, err := old.Subscribe(events.Subjects{}.AllFollows(), func(m *nats.Msg) {
			data, _ := json.Marshal(events.FollowsAnswer{Frontend: "old"})
			_ = m.Respond(data)
		}); err != nil {
			t.Fatal(err)
		}
		if err := old.Flush(); err != nil {
			t.Fatal(err)
		}
		_, stop, log := handingTracker(t, srv, pending)
		stop()
		if l := log.String(); !strings.Contains(l, "not confirmed") || !strings.Contains(l, "tickets=3") {
			t.Errorf("logged %q, want the 3 tickets' handover not confirmed", l)
		}
	})
}

// TestAnOlderTakerIsHandedEveryMessage: a handover of several messages
// to a frontend of an older version, which takes them without answering:
// every message is sent. Before, the first one's unanswered wait ended
// the handover, and the tickets after it were never sent.
func TestAnOlderTakerIsHandedEveryMessage(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	old := testkit.Connect(t, srv)
	var got atomic.Int64
	if _, err := old.QueueSubscribe(events.Subjects{}.FollowsHandover(), events.FollowsHandoverQueue, func(m *nats.Msg) {
		var h events.Handover
		if json.Unmarshal(m.Data, &h) == nil {
			got.Add(int64(len(h.Tickets)))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := old.Flush(); err != nil {
		t.Fatal(err)
	}
	pending := make([]string, 2*events.MaxHandoverTickets+500)
	for i := range pending {
		pending[i] = fmt.Sprintf("t%d", i)
	}
	_, stop, _ := handingTracker(t, srv, pending)
	stop()
	testkit.Eventually(t, 5*time.Second, func() bool { return got.Load() == int64(len(pending)) },
		"the older taker was not handed every one of %d tickets", len(pending))
}

// TestAHandoverTakesTicketIDsOnly: what is no ticket id (a subject's
// wildcard or separator, which would make a question about other
// tickets) is dropped from a handover.
func TestAHandoverTakesTicketIDsOnly(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	b, _, _ := handingTracker(t, srv, nil)
	nc := testkit.Connect(t, srv)
	data, _ := json.Marshal(events.Handover{Frontend: "x", Tickets: []string{"ok1", "a.b", "*", ">", "", "_frontends", "_handover"}})
	if err := nc.Publish(events.Subjects{}.FollowsHandover(), data); err != nil {
		t.Fatal(err)
	}
	got := tookAll(t, 1, b)
	if len(got) != 1 || got["ok1"] != 1 {
		t.Fatalf("took %v, want ok1 alone", got)
	}
}

// TestAHandoverCarriesTheRoster: a frontend that took a handover waits,
// in its questions, for the frontends its sender heard and it did not (a
// frontend cut off from NATS when the taker started: its client may
// follow a ticket handed over), instead of finding its question complete
// without them and cancelling the ticket.
func TestAHandoverCarriesTheRoster(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	a, _, stopA := runTrackerWith(t, srv, 0, func(tr *Tracker) {
		tr.SetHandover(func([]string) {}, func() []string { return []string{"t1"} })
	})
	// A frontend a hears that then goes silent (cut off).
	nc := testkit.Connect(t, srv)
	roll, _ := json.Marshal(events.RollCall{Frontend: "cut-off"})
	testkit.Eventually(t, 5*time.Second, func() bool {
		_ = nc.Publish(events.Subjects{}.FollowsRollCall(), roll)
		r, _ := a.roster()
		return r["cut-off"]
	}, "a never heard the cut-off frontend")
	took := make(chan []string, 1)
	b, bnc, _ := runTrackerWith(t, srv, 0, func(tr *Tracker) {
		tr.SetHandover(func(ids []string) { took <- ids }, func() []string { return nil })
	})
	subscribed(t, b, bnc)
	stopA()
	select {
	case <-took:
	case <-time.After(5 * time.Second):
		t.Fatal("nothing handed over")
	}
	if followed, complete := ask(t, b, "t1"); followed || complete {
		t.Fatalf("followed %v, complete %v: want incomplete, the cut-off frontend unanswered", followed, complete)
	}
}

// TestHandoversInABurstAreAllTaken: the handovers of frontends stopping
// together (tens of messages of a thousand tickets) are all taken. A
// channel of 64 messages read by Run's loop dropped a third of them.
func TestHandoversInABurstAreAllTaken(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	var n atomic.Int64
	tr, trnc, _ := runTrackerWith(t, srv, 0, func(tr *Tracker) {
		tr.SetHandover(func(ids []string) {
			for range ids { // as the API's: a timer each
				time.AfterFunc(time.Hour, func() {}).Stop()
				n.Add(1)
			}
		}, func() []string { return nil })
	})
	subscribed(t, tr, trnc)
	nc := testkit.Connect(t, srv)
	ids := make([]string, events.MaxHandoverTickets)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%d", i)
	}
	const msgs = 150
	for i := range msgs {
		data, _ := json.Marshal(events.Handover{Frontend: fmt.Sprintf("f%d", i%3), Tickets: ids})
		if err := nc.Publish(events.Subjects{}.FollowsHandover(), data); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return n.Load() == msgs*events.MaxHandoverTickets },
		"not every ticket of %d taken", msgs*events.MaxHandoverTickets)
}

// TestABadHandoverIsDropped: what is no handover (not JSON), and a
// roster past events.MaxHandoverRoster or with an age below zero, is
// dropped without harm: the tracker runs on and takes the next handover,
// and no frontend of those rosters is awaited by its questions.
func TestABadHandoverIsDropped(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	took := make(chan []string, 4)
	b, bnc, _ := runTrackerWith(t, srv, 0, func(tr *Tracker) {
		tr.SetHandover(func(ids []string) { took <- ids }, func() []string { return nil })
	})
	subscribed(t, b, bnc)
	nc := testkit.Connect(t, srv)
	huge := map[string]int64{}
	for i := range events.MaxHandoverRoster + 1 {
		huge[fmt.Sprintf("f%d", i)] = 10
	}
	bad, _ := json.Marshal(events.Handover{Frontend: "x", Roster: huge})
	future, _ := json.Marshal(events.Handover{Frontend: "y", Roster: map[string]int64{"ahead": -5}})
	good, _ := json.Marshal(events.Handover{Frontend: "z", Tickets: []string{"ok1"}})
	for _, data := range [][]byte{[]byte("{not json"), bad, future, good} {
		if err := nc.Publish(events.Subjects{}.FollowsHandover(), data); err != nil {
			t.Fatal(err)
		}
	}
	if got := tookAll(t, 1, took); len(got) != 1 || got["ok1"] != 1 {
		t.Fatalf("took %v, want ok1 alone", got)
	}
	if r, _ := b.roster(); len(r) != 1 {
		t.Fatalf("roster of %d frontends: want this frontend alone", len(r))
	}
}
