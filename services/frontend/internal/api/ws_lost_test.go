package api_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/api"
)

// TestALostClientsTicketIsCancelledUnlessFollowed: the ticket of a
// /ws/events client whose connection was cut is kept for it to follow
// again, on any frontend, for -lost-grace; one no frontend's client
// follows then is cancelled, saying why. Before, it was kept until its
// mode's max_wait (5 minutes here): a player who went away was matched
// and its partner sent to a game it never joined.
func TestALostClientsTicketIsCancelledUnlessFollowed(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	o := options{api: api.Config{LostGrace: grace}}
	e := start(t, o)
	other := newFrontend(t, e, o)
	asked, err := e.nc.SubscribeSync(e.subj.AllFollows())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// follow follows the ticket of player after its socket was cut
		// (nil: no one does).
		follow    func(t *testing.T, id, player string)
		cancelled bool
	}{
		{"gone", nil, true},
		{"followed again on its frontend", func(t *testing.T, id, player string) { follow(t, e, e.http.URL, id, player) }, false},
		{"followed on another frontend", func(t *testing.T, id, player string) { follow(t, e, other.URL, id, player) }, false},
	} {
		player := strings.ReplaceAll(tc.name, " ", "-")
		c, read := dialEvents(t, e, "player_id="+player+"&skill=1650&region=eu")
		id, _ := read()["ticket_id"].(string)
		_ = c.NetConn().Close()
		if tc.follow != nil {
			tc.follow(t, id, player)
		}
		if tc.cancelled {
			testkit.Eventually(t, 5*time.Second, func() bool {
				owner, _ := e.claims.Owner(t.Context(), id)
				return owner == events.OwnerCancelled
			}, "%s: the ticket was not cancelled", tc.name)
			code, v, _ := e.do(t, http.MethodGet, ticketapi.TicketPath(id), "", map[string]string{"Authorization": "Bearer " + e.token(t, player)})
			if code != 200 || v["status"] != "cancelled" || !strings.Contains(v["reason"].(string), "not followed again") {
				t.Errorf("%s: %d %v, want cancelled, not followed again", tc.name, code, v)
			}
			continue
		}
		// Asked after the grace, and answered within the answers' wait.
		for {
			m, err := asked.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("%s: no one asked who follows the ticket: %v", tc.name, err)
			}
			if m.Subject == e.subj.Follows(id) {
				break
			}
		}
		time.Sleep(events.FollowsAnswerWait + 2*time.Second) // and a cancel
		if owner, _ := e.claims.Owner(t.Context(), id); owner == events.OwnerCancelled {
			t.Errorf("%s: the ticket was cancelled", tc.name)
		}
	}
}

// follow opens player's event stream of ticket id on the frontend at
// base and reads its first event: the stream is followed when it
// returns, until the test ends.
func follow(t *testing.T, e *env, base, id, player string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+ticketapi.EventsPath(id), nil)
	req.Header.Set("Authorization", "Bearer "+e.token(t, player))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if got := readSSE(t, bufio.NewReader(res.Body), 1); got[0].status != "queued" {
		t.Fatalf("%s's events: %v", player, got)
	}
}
