package allocator

import (
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
	"github.com/quickmatch-dev/quickmatch/pkg/ticketapi"
)

// TestPlayURLOfEveryAddress: a player's play URL is one every client
// takes (ticketapi.ValidAssignmentURL) whatever address the game server
// has: an IPv6 one (an Agones cluster's nodes may have only those) went
// in bare, "http://fd00::7:7654/play", which no client takes, so every
// player of such a server was refused their assignment.
func TestPlayURLOfEveryAddress(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"10.0.0.7", "fd00::7", "::1", "game-1.example"} {
		u := playURL(Server{Name: "gs", Address: addr, Port: 7654}, play.Join{MatchID: "m1", Token: "t"})
		if !ticketapi.ValidAssignmentURL(u) {
			t.Errorf("%s: %q refused", addr, u)
		}
	}
}
