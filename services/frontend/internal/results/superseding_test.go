package results

import (
	"fmt"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// A replacement whose frontend could neither take nor withdraw it learns
// that its shard's owner took it in from the result told for the ticket
// it replaced, on its player's subject, which the tracker hears though
// it does not track that ticket (chaos S65). Every player of a party
// must have been heard so: a player whose older ticket was not
// superseded yet may still be matched through it.
func TestHeardSupersedingNeedsEveryPlayersOlderTicketSuperseded(t *testing.T) {
	t.Parallel()
	st := newStack(t, false, nil)
	st.trackParty(t, "r1", time.Now(), "p1", "p2")
	tell := st.pub.TellSuperseded(nil, nil)
	marks := 0
	superseded := func(old, player, newer string) {
		t.Helper()
		if err := tell(t.Context(), events.LiveTicket{TicketID: old, Players: []string{player}, Mode: "2v2"}, newer); err != nil {
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
	superseded("w1", "p1", "r1")
	if st.tr.HeardSuperseding(t.Context(), "r1") {
		t.Fatal("superseding heard with p2's older ticket not superseded")
	}
	superseded("w0", "p2", "") // the teller did not know the newer ticket
	superseded("x2", "p2", "x3")
	if st.tr.HeardSuperseding(t.Context(), "r1") {
		t.Fatal("superseding heard from results that name no ticket, or another one")
	}
	superseded("w2", "p2", "r1")
	if !st.tr.HeardSuperseding(t.Context(), "r1") {
		t.Fatal("superseding not heard though both players' older tickets were superseded by r1")
	}
	if st.tr.HeardSuperseding(t.Context(), "never") {
		t.Fatal("superseding heard of a ticket not tracked")
	}
}
