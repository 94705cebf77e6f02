package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// bfSeat is team of a room of teams of size that accepts backfill, as
// the allocator signs it for a match's players and for a player it sends
// to fill a free seat.
func bfSeat(team, teams, size int) jointoken.Seat {
	return jointoken.Seat{Team: team, Teams: teams, TeamSize: size, AcceptsBackfill: true}
}

// statusOf reads the game server's /status.
func statusOf(t *testing.T, hs *httptest.Server) play.Status {
	t.Helper()
	res, err := http.Get(hs.URL + play.StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st play.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// requestOf waits until /status lists exactly want (nil: no request)
// and returns it.
func requestOf(t *testing.T, hs *httptest.Server, want []play.Backfill) {
	t.Helper()
	var got []play.Backfill
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got = statusOf(t, hs).Backfill; reflect.DeepEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status backfill %+v, want %+v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seatedOf wants /status to say that exactly want hold the seats of the
// rooms it lists as asking.
func seatedOf(t *testing.T, hs *httptest.Server, want ...string) {
	t.Helper()
	if got := statusOf(t, hs).Seated; !slices.Equal(got, want) {
		t.Fatalf("/status seated %v, want %v", got, want)
	}
}

// joinBackfill dials room matchID with a token seating player on seat.
func joinBackfill(t *testing.T, hs *httptest.Server, matchID, player string, seat jointoken.Seat) *websocket.Conn {
	t.Helper()
	return joinSeated(t, hs, matchID, player, seat, time.Minute)
}

// refusedWith dials room matchID with tok and wants a 403 whose body
// says why.
func refusedWith(t *testing.T, hs *httptest.Server, matchID, tok, why string) {
	t.Helper()
	_, res, err := dial(t, hs, matchID, tok)
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("want 403 (%s): %v", why, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), why) {
		t.Fatalf("refused with %q, want %q", body, why)
	}
}

// Without Agones: a 2v2 that accepts backfill loses b2 for good (no
// return within the grace), plays on 2v1 and asks for a player on team 2
// in /status; a full team and the player who left are refused; b3, sent
// to the free seat, is admitted with the team's score and plays; every
// change of the free seats is a new Ask.
func TestBackfillTwoVersusTwo(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour})
	conns := map[string]*websocket.Conn{}
	for _, p := range []seated{{"a1", 0}, {"a2", 0}, {"b1", 1}, {"b2", 1}} {
		conns[p.name] = joinBackfill(t, hs, "m1", p.name, bfSeat(p.team, 2, 2))
		next(t, conns[p.name], "welcome")
	}
	next(t, conns["a1"], "start")
	requestOf(t, hs, nil)
	// Team 2 takes a round: b1, b2 paper against rock, rock.
	for p, mv := range map[string]string{"a1": "rock", "a2": "rock", "b1": "paper", "b2": "paper"} {
		move(t, conns[p], mv)
	}
	next(t, conns["a1"], "round")

	conns["b2"].Close()
	gone := next(t, conns["a1"], "player_gone")
	if gone.Player != "b2" || !reflect.DeepEqual(gone.Teams, [][]string{{"a1", "a2"}, {"b1"}}) {
		t.Fatalf("player_gone %+v", gone)
	}
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 1, Seats: []int{0, 1}}})
	seatedOf(t, hs, "a1", "a2", "b1")

	// 2v1 plays on: three throws decide a round.
	for p, mv := range map[string]string{"a1": "paper", "a2": "paper", "b1": "rock"} {
		move(t, conns[p], mv)
	}
	if m := next(t, conns["a1"], "round"); m.Score["a1"] != 1 || m.Score["b1"] != 1 || len(m.Score) != 3 {
		t.Fatalf("2v1 round %+v", m)
	}

	// Refused: a full team, the player who left.
	if m := next(t, joinBackfill(t, hs, "m1", "a3", bfSeat(0, 2, 2)), "error"); !strings.Contains(m.Error, "team 1 is full") {
		t.Fatalf("a3 on the full team 1: %+v", m)
	}
	if m := next(t, joinBackfill(t, hs, "m1", "b2", bfSeat(1, 2, 2)), "error"); !strings.Contains(m.Error, "left this game") {
		t.Fatalf("b2 back after the grace: %+v", m)
	}

	b3 := joinBackfill(t, hs, "m1", "b3", bfSeat(1, 2, 2))
	next(t, b3, "welcome")
	if m := next(t, b3, "resume"); !reflect.DeepEqual(m.Teams, [][]string{{"a1", "a2"}, {"b1", "b3"}}) || m.Score["b3"] != 1 {
		t.Fatalf("b3's resume %+v: the team's score", m)
	}
	requestOf(t, hs, nil)
	conns["b3"] = b3
	for p, mv := range map[string]string{"a1": "rock", "a2": "rock", "b1": "rock", "b3": "paper"} {
		move(t, conns[p], mv)
	}
	if r, _ := next(t, conns["a1"], "round").Round.(map[string]any); !reflect.DeepEqual(r["winners"], []any{"b1", "b3"}) {
		t.Fatalf("b3's round %+v", r)
	}

	// b1 gone too: a new Ask (1 b2 gone, 2 b3 seated, 3 b1 gone).
	conns["b1"].Close()
	next(t, conns["a1"], "player_gone")
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 3, Seats: []int{0, 1}}})
	// b3, sent to fill b2's seat, holds it: the allocator need not wait
	// for b3's token to expire to offer b1's.
	seatedOf(t, hs, "a1", "a2", "b3")
	// b3 gone as well: team 2 is empty, a forfeit; the room ends and asks
	// for nobody.
	b3.Close()
	if m := next(t, conns["a1"], "over"); !slices.Equal(m.Winners, []string{"a1", "a2"}) || !strings.Contains(m.Reason, "b3 did not come back") {
		t.Fatalf("over %+v", m)
	}
	requestOf(t, hs, nil)
}

// A room whose tokens do not say it accepts backfill refuses a backfill
// token before the WebSocket opens, and a player gone for good ends its
// game as before.
func TestNoBackfillRoomRefusesABackfillToken(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 3, ReconnectGrace: 100 * time.Millisecond})
	seat := func(team int) jointoken.Seat { return jointoken.Seat{Team: team, Teams: 2, TeamSize: 1} }
	a := joinSeated(t, hs, "m1", "a", seat(0), time.Minute)
	b := joinSeated(t, hs, "m1", "b", seat(1), time.Minute)
	next(t, a, "start")
	next(t, b, "start")
	refusedWith(t, hs, "m1", seatedToken(t, "m1", "c", bfSeat(1, 2, 1), time.Now().Add(time.Minute)), "does not accept backfill")
	b.Close()
	if m := next(t, a, "over"); m.Winner != "a" {
		t.Fatalf("over %+v", m)
	}
	requestOf(t, hs, nil)
}

// allocateRoom plays the allocator's allocation of room r for match.
func allocateRoom(t *testing.T, fake *sdktest.Server, match string, r agones.Room) {
	t.Helper()
	if err := fake.Allocate(sdktest.RoomAllocation(match, r)); err != nil {
		t.Fatalf("allocate %s: %v", match, err)
	}
}

// backfillAnnotation waits until match's backfill annotation on the
// fake's GameServer is want.
func backfillAnnotation(t *testing.T, fake *sdktest.Server, match, want string) {
	t.Helper()
	var got string
	waitFor(t, func() bool {
		got = fake.GameServer().ObjectMeta.Annotations[agones.BackfillAnnotation(match)]
		return got == want
	}, "backfill annotation of "+match+" never "+want)
}

// sortedPlayers waits until the fake's players List is want (sorted).
func sortedPlayers(t *testing.T, fake *sdktest.Server, want ...string) {
	t.Helper()
	var players []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, players = lists(fake)
		players = slices.Sorted(slices.Values(players))
		if slices.Equal(players, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("players List %v, want %v", players, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Under Agones: a 2v2 allocated as accepting backfill loses b2 for good;
// the request is in its annotation (and /status), b2 leaves the players
// List; b3, who is in no annotation, is admitted with a backfill token,
// joins the players List, and the annotation is cleared. A token without
// backfill for a player the allocation did not seat, or a backfill token
// for a full team, is refused; so is any backfill token in a room
// allocated without backfill.
func TestAgonesBackfillTwoVersusTwo(t *testing.T) {
	t.Parallel()
	_, hs, fake := startAgones(t, Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true})
	allocateRoom(t, fake, "m1", agones.Room{Mode: "2v2", Teams: [][]string{{"a1", "a2"}, {"b1", "b2"}}, AcceptsBackfill: true})
	allocateRoom(t, fake, "m2", agones.Room{Mode: "1v1", Teams: [][]string{{"x"}, {"y"}}})
	refusedWith(t, hs, "m2", seatedToken(t, "m2", "z", bfSeat(1, 2, 1), time.Now().Add(time.Minute)), "does not accept backfill")

	conns := map[string]*websocket.Conn{}
	for i, p := range []string{"a1", "a2", "b1", "b2"} {
		conns[p] = joinBackfill(t, hs, "m1", p, bfSeat(i/2, 2, 2))
		next(t, conns[p], "welcome")
	}
	next(t, conns["a1"], "start")
	sortedPlayers(t, fake, "a1", "a2", "b1", "b2", "x", "y")

	conns["b2"].Close()
	next(t, conns["a1"], "player_gone")
	backfillAnnotation(t, fake, "m1", `{"match_id":"m1","ask":1,"seats":[0,1]}`)
	requestOf(t, hs, []play.Backfill{{MatchID: "m1", Ask: 1, Seats: []int{0, 1}}})
	sortedPlayers(t, fake, "a1", "a2", "b1", "x", "y")

	refusedWith(t, hs, "m1", seatedToken(t, "m1", "b3", jointoken.Seat{Team: 1, Teams: 2, TeamSize: 2}, time.Now().Add(time.Minute)), "not a player")
	refusedWith(t, hs, "m1", seatedToken(t, "m1", "b3", bfSeat(1, 3, 1), time.Now().Add(time.Minute)), "seat")
	if m := next(t, joinBackfill(t, hs, "m1", "a3", bfSeat(0, 2, 2)), "error"); !strings.Contains(m.Error, "team 1 is full") {
		t.Fatalf("a3 on the full team 1: %+v", m)
	}
	b3 := joinBackfill(t, hs, "m1", "b3", bfSeat(1, 2, 2))
	next(t, b3, "welcome")
	next(t, b3, "resume")
	backfillAnnotation(t, fake, "m1", "")
	requestOf(t, hs, nil)
	sortedPlayers(t, fake, "a1", "a2", "b1", "b3", "x", "y")

	// b3 plays for team 2 until it wins: b1 and b3 scissors beat paper.
	conns["b3"] = b3
	for range 4 {
		for p, mv := range map[string]string{"a1": "paper", "a2": "paper", "b1": "scissors", "b3": "scissors"} {
			move(t, conns[p], mv)
		}
		next(t, b3, "round")
	}
	if m := next(t, b3, "over"); !slices.Equal(m.Winners, []string{"b1", "b3"}) {
		t.Fatalf("over %+v", m)
	}
	// The room given back with its players, b3 with them; m2 stays.
	sortedPlayers(t, fake, "x", "y")
	waitFor(t, func() bool { r, _ := lists(fake); return slices.Equal(r, []string{"m2"}) }, "m1 not given back")
	backfillAnnotation(t, fake, "m1", "")
}

// Under Agones, a free-for-all of three that loses z goes on with x and
// y, asks for one player on z's team, admits w there with no points,
// and the players List follows.
func TestAgonesBackfillFreeForAll(t *testing.T) {
	t.Parallel()
	_, hs, fake := startAgones(t, Config{BestOf: 3, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true})
	allocateRoom(t, fake, "f1", agones.Room{Mode: "ffa", Teams: [][]string{{"x"}, {"y"}, {"z"}}, AcceptsBackfill: true})
	conns := map[string]*websocket.Conn{}
	for i, p := range []string{"x", "y", "z"} {
		conns[p] = joinBackfill(t, hs, "f1", p, bfSeat(i, 3, 1))
		next(t, conns[p], "welcome")
	}
	if m := next(t, conns["x"], "start"); !m.FreeForAll {
		t.Fatalf("start %+v", m)
	}
	for p, mv := range map[string]string{"x": "rock", "y": "scissors", "z": "scissors"} {
		move(t, conns[p], mv)
	}
	next(t, conns["x"], "round") // x 2 points
	conns["z"].Close()
	if m := next(t, conns["x"], "player_gone"); !m.FreeForAll || !reflect.DeepEqual(m.Teams, [][]string{{"x"}, {"y"}, {}}) {
		t.Fatalf("player_gone %+v", m)
	}
	backfillAnnotation(t, fake, "f1", `{"match_id":"f1","ask":1,"seats":[0,0,1]}`)
	sortedPlayers(t, fake, "x", "y")
	move(t, conns["x"], "paper")
	move(t, conns["y"], "scissors")
	next(t, conns["x"], "round") // y 1 point: two players play on

	w := joinBackfill(t, hs, "f1", "w", bfSeat(2, 3, 1))
	next(t, w, "welcome")
	if m := next(t, w, "resume"); m.Score["w"] != 0 || m.Score["x"] != 2 || !reflect.DeepEqual(m.Teams, [][]string{{"x"}, {"y"}, {"w"}}) {
		t.Fatalf("w's resume %+v", m)
	}
	backfillAnnotation(t, fake, "f1", "")
	sortedPlayers(t, fake, "w", "x", "y")
	for p, mv := range map[string]*websocket.Conn{"rock": w, "scissors": conns["x"]} {
		move(t, mv, p)
	}
	move(t, conns["y"], "scissors")
	if m := next(t, w, "over"); !slices.Equal(m.Winners, []string{"x", "w"}) || m.Score["w"] != 2 {
		t.Fatalf("over %+v: w 2 points, x 2, y 1", m)
	}
	sortedPlayers(t, fake)
}
