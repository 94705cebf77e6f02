package results

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// A replacement whose frontend could neither take nor withdraw it learns
// that its shard's owner took it in from the result told for the ticket
// it replaced, on its player's subject, which the tracker hears though
// it does not track that ticket (chaos S65). Only a result naming it
// counts, and never for a party's ticket: an older ticket's players are
// told together, while the take superseded only the first player's (a
// member may have a waiting ticket of their own still).
func TestHeardSupersedingIsMarkedByAResultNamingIt(t *testing.T) {
	t.Parallel()
	st := newStack(t, false, nil)
	st.track(t, t.Context(), "r1", "p1")
	st.trackParty(t, "r2", time.Now(), "p2", "p3")
	tell := st.pub.TellSuperseded(nil, nil)
	marks := 0
	superseded := func(old, newer string, players ...string) {
		t.Helper()
		if err := tell(t.Context(), events.LiveTicket{TicketID: old, Players: players, Mode: "1v1"}, newer); err != nil {
			t.Fatal(err)
		}
		// Heard in order: once a result published after it is, so is
		// this one.
		marks++
		mark := fmt.Sprintf("mark%d", marks)
		w := st.track(t, t.Context(), mark, "p9")
		st.tell(t, mark, "p9", events.StatusQueued)
		await(t, w, mark)
	}
	superseded("w0", "", "p1") // the teller did not know the newer ticket
	superseded("x1", "x2", "p1")
	superseded("w2", "r2", "p2", "p3")
	for _, id := range []string{"r1", "r2", "never"} {
		if st.tr.HeardSuperseding(t.Context(), id) {
			t.Fatalf("%s heard superseding from results that name no ticket, another one, or a party's", id)
		}
	}
	// A result on p1's subject for another player is not p1's.
	forged, err := json.Marshal(events.Result{SchemaVersion: events.SchemaVersion, TicketID: "w9", PlayerID: "p0",
		Status: events.StatusCancelled, Reason: "superseded by ticket r1", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.nc.Publish(events.Subjects{}.Result("p1"), forged); err != nil {
		t.Fatal(err)
	}
	if err := st.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	superseded("x3", "x4", "p1") // heard after the forged one
	if st.tr.HeardSuperseding(t.Context(), "r1") {
		t.Fatal("r1 heard superseding from a result of another player")
	}
	superseded("w1", "r1", "p1")
	if !st.tr.HeardSuperseding(t.Context(), "r1") {
		t.Fatal("r1 not heard superseding though p1's older ticket was told superseded by it")
	}
}

// The result that names it, published while the tracker was cut off, is
// read back by the catch-up as it reconnects: it is the player's last
// result, of another ticket.
func TestHeardSupersedingIsReadBackByACatchUp(t *testing.T) {
	t.Parallel()
	st := newStack(t, true, nil)
	w := st.track(t, t.Context(), "r1", "p1")
	st.tell(t, "r1", "p1", events.StatusQueued)
	await(t, w, "queued")
	st.link.Cut(testkit.Down)
	if err := st.pub.TellSuperseded(nil, nil)(t.Context(), events.LiveTicket{TicketID: "w1", Players: []string{"p1"}, Mode: "1v1"}, "r1"); err != nil {
		t.Fatal(err)
	}
	reconnects := st.nc.Stats().Reconnects
	st.link.Drop()
	st.link.Heal()
	testkit.Eventually(t, 15*time.Second, func() bool { return st.nc.Stats().Reconnects > reconnects && st.nc.IsConnected() }, "not reconnected")
	testkit.Eventually(t, 15*time.Second, func() bool { return st.tr.HeardSuperseding(t.Context(), "r1") },
		"r1 not heard superseding after the catch-up")
}
