package kubetest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/allocator"
	"github.com/quickmatch-dev/quickmatch/services/allocator/internal/kube"
)

// teamMatch is a match of mode with these teams, a ticket per player.
func teamMatch(id, mode string, teams ...[]string) events.Match {
	m := events.Match{SchemaVersion: events.SchemaVersion, MatchID: id, Mode: mode, Region: "eu", Tier: "gold"}
	for team, players := range teams {
		for _, p := range players {
			m.Tickets = append(m.Tickets, events.MatchTicket{TicketID: "t-" + p, Players: []string{p}, Team: team})
		}
	}
	return m
}

// TestModesGoToTheirFleets: a cluster entry names the modes its fleet
// hosts. Each match goes to the fleet hosting its mode, with its room
// (teams) in the annotation; a mode no entry hosts fails at once, as a
// permanent failure naming the mode, without an allocation call.
func TestModesGoToTheirFleets(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "gs-duel", Fleet: "rps-duel", RoomsCap: 4, PlayersCap: 8})
	c.Create(t, "default", GameServer{Name: "gs-team", Fleet: "rps-team", RoomsCap: 4, PlayersCap: 16})
	b := backend(t, kube.Config{Mode: kube.HighDensity},
		kube.Cluster{Name: "duel", Config: c.Config, Namespace: "default", Fleet: "rps-duel", Modes: []string{"1v1"}},
		kube.Cluster{Name: "team", Config: c.Config, Namespace: "default", Fleet: "rps-team", Modes: []string{"2v2", "ffa"}})
	for _, tt := range []struct {
		m      events.Match
		server string
	}{
		{teamMatch("m-team", "2v2", []string{"a", "b"}, []string{"c", "d"}), "gs-team"},
		{teamMatch("m-duel", "1v1", []string{"e"}, []string{"f"}), "gs-duel"},
		{teamMatch("m-ffa", "ffa", []string{"g"}, []string{"h"}, []string{"i"}), "gs-team"},
	} {
		srv, err := b.Allocate(t.Context(), tt.m)
		if err != nil || srv.Name != tt.server {
			t.Fatalf("%s: %+v %v, want %s", tt.m.Mode, srv, err, tt.server)
		}
		room, err := agones.DecodeRoom(c.Get(t, "default", tt.server).Annotations[agones.MatchAnnotationPrefix+tt.m.MatchID])
		want, _ := allocator.RoomOf(tt.m)
		if err != nil || !reflect.DeepEqual(room, want) {
			t.Fatalf("%s: room %+v %v, want %+v", tt.m.Mode, room, err, want)
		}
	}
	if g := c.Get(t, "default", "gs-team"); !slices.Equal(g.Rooms, []string{"m-team", "m-ffa"}) || len(g.Players) != 7 {
		t.Fatalf("gs-team %+v", g)
	}
	calls := c.Calls()
	_, err := b.Allocate(t.Context(), teamMatch("m-5", "5v5", []string{"a"}, []string{"b"}))
	if !errors.Is(err, allocator.ErrPermanent) || !errors.Is(err, allocator.ErrModeNotHosted) || !strings.Contains(err.Error(), `"5v5"`) || c.Calls() != calls {
		t.Fatalf("unhosted mode: %v (%d calls)", err, c.Calls()-calls)
	}
}

// TestLabelLockingKeepsModesApart: a Ready server is locked to the mode
// of its first match; a match of another mode takes another server even
// when the locked one has room, and one of the same mode joins it.
func TestLabelLockingKeepsModesApart(t *testing.T) {
	c := Start(t)
	for _, name := range []string{"gs-a", "gs-b"} {
		c.Create(t, "default", GameServer{Name: name, Fleet: "rps", RoomsCap: 4, PlayersCap: 16})
	}
	b := backend(t, kube.Config{Mode: kube.LabelLocking}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps"})
	var got []string
	for _, m := range []events.Match{
		teamMatch("m1", "1v1", []string{"a"}, []string{"b"}),
		teamMatch("m2", "2v2", []string{"c", "d"}, []string{"e", "f"}),
		teamMatch("m3", "1v1", []string{"g"}, []string{"h"}),
	} {
		srv, err := b.Allocate(t.Context(), m)
		if err != nil {
			t.Fatalf("%s: %v", m.MatchID, err)
		}
		got = append(got, srv.Name)
	}
	if !slices.Equal(got, []string{"gs-a", "gs-b", "gs-a"}) {
		t.Fatalf("servers %v, want gs-a gs-b gs-a", got)
	}
	a, bb := c.Get(t, "default", "gs-a"), c.Get(t, "default", "gs-b")
	if a.Labels[kube.LabelMode] != "1v1" || bb.Labels[kube.LabelMode] != "2v2" || !slices.Equal(a.Rooms, []string{"m1", "m3"}) || !slices.Equal(bb.Rooms, []string{"m2"}) {
		t.Fatalf("gs-a %+v, gs-b %+v", a, bb)
	}
}

// TestOnePerServerWritesTheRoom: one-per-server also adds the match to
// the rooms List and writes its room, since the game server opens rooms
// from the List in every mode; the server is not reused.
func TestOnePerServerWritesTheRoom(t *testing.T) {
	c := Start(t)
	c.Create(t, "default", GameServer{Name: "gs-1", Fleet: "rps", RoomsCap: 1, PlayersCap: 4})
	b := backend(t, kube.Config{Mode: kube.OnePerServer}, kube.Cluster{Name: "one", Config: c.Config, Namespace: "default", Fleet: "rps"})
	m := teamMatch("m1", "2v2", []string{"a", "b"}, []string{"c", "d"})
	if srv, err := b.Allocate(t.Context(), m); err != nil || srv.Name != "gs-1" {
		t.Fatalf("%+v %v", srv, err)
	}
	g := c.Get(t, "default", "gs-1")
	room, err := agones.DecodeRoom(g.Annotations[agones.MatchAnnotationPrefix+"m1"])
	if err != nil || !slices.Equal(g.Rooms, []string{"m1"}) || !slices.Equal(g.Players, []string{"a", "b", "c", "d"}) || !reflect.DeepEqual(room.Teams, [][]string{{"a", "b"}, {"c", "d"}}) {
		t.Fatalf("gs-1 %+v room %+v %v", g, room, err)
	}
	if _, err := b.Allocate(t.Context(), teamMatch("m2", "1v1", []string{"x"}, []string{"y"})); !errors.Is(err, allocator.ErrNoCapacity) {
		t.Fatalf("second match: %v, want no capacity", err)
	}
}
