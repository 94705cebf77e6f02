package kubetest

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
)

// earlyMatch is a match of mode "ffa4" (four teams of one) that opened
// early with one player per team on teams 0..len(players)-1
// (events.Match.Teams, TeamSize): its room keeps four seats.
func earlyMatch(id string, players ...string) events.Match {
	var teams [][]string
	for _, p := range players {
		teams = append(teams, []string{p})
	}
	m := teamMatch(id, "ffa4", teams...)
	m.Teams, m.TeamSize = 4, 1
	return m
}

// TestEarlyRoomOnTheGameServer: a match that started early with three of
// its mode's four teams, allocated in each mode, leaves on the real
// GameServer the room of four teams of one, the fourth written [] (not
// null, which a game server would refuse or read as a smaller room), the
// match on the rooms List and exactly its three players on the players
// List: the free seat is nobody's until a backfill fills it.
func TestEarlyRoomOnTheGameServer(t *testing.T) {
	c := Start(t)
	for _, mode := range []kube.Mode{kube.HighDensity, kube.LabelLocking, kube.OnePerServer} {
		fleet, name := "rps-"+string(mode), "gs-"+string(mode)
		c.Create(t, "default", GameServer{Name: name, Fleet: fleet, RoomsCap: 2, PlayersCap: 8})
		b := backend(t, kube.Config{Mode: mode}, kube.Cluster{Name: "eu-1", Config: c.Config, Namespace: "default", Fleet: fleet})
		// An id as the matcher makes them (25 characters).
		id := events.MatchID([]string{"t-a@1", "t-b@2", "t-c@3", string(mode)})
		m := earlyMatch(id, "a", "b", "c")
		srv, err := b.Allocate(t.Context(), m)
		if err != nil || srv.Name != name || srv.Cluster != "eu-1" {
			t.Fatalf("%s: allocated %+v %v, want %s", mode, srv, err, name)
		}
		g := c.Get(t, "default", name)
		raw := g.Annotations[agones.MatchAnnotationPrefix+id]
		room, err := agones.DecodeRoom(raw)
		want := agones.Room{Mode: "ffa4", Teams: [][]string{{"a"}, {"b"}, {"c"}, {}}, TeamSize: 1}
		if err != nil || !reflect.DeepEqual(room, want) || !strings.Contains(raw, `"teams":[["a"],["b"],["c"],[]]`) {
			t.Fatalf("%s: room %q = %+v %v, want %+v", mode, raw, room, err, want)
		}
		if of, _ := allocator.RoomOf(m); !reflect.DeepEqual(room, of) {
			t.Fatalf("%s: room %+v, RoomOf says %+v", mode, room, of)
		}
		if g.State != agones.StateAllocated || !slices.Equal(g.Rooms, []string{id}) || !slices.Equal(g.Players, []string{"a", "b", "c"}) {
			t.Fatalf("%s: %s %+v, want Allocated with rooms [%s] and players [a b c]", mode, name, g, id)
		}
	}
}
