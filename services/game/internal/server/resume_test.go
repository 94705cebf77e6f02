package server

import (
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk/sdktest"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// A game server restarted in place (a crash, an OOM kill: Agones
// restarts the container, the GameServer stays) lost every resume key: a
// copied token took its player's seat again, the player's own key was
// refused, and a player whose token had expired could not come back at
// all (review of 2026-12-05). The seats are kept on the GameServer; the
// restarted process admits a player who sat before with its key alone.
func TestResumeKeysOutliveARestartInPlace(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := Config{BestOf: 3, Reuse: true}
	first, hs, crash := runOn(t, fake, cfg)
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	allocate(t, fake, "m1", []string{"alice"}, []string{"bob"})
	waitFor(t, func() bool { return len(first.openIDs()) == 1 }, "not opened")
	// Bob's token expires during the game; alice's URL is copied.
	bobExpires := time.Now().Add(3 * time.Second) // a little over his joins, under -race too
	aliceTok, bobTok := token(t, "m1", "alice", time.Minute), token(t, "m1", "bob", time.Until(bobExpires))
	a, _, err := dial(t, hs, "m1", aliceTok)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := dial(t, hs, "m1", bobTok)
	if err != nil {
		t.Fatal(err)
	}
	aliceKey, bobKey := next(t, a, "welcome").Resume, next(t, b, "welcome").Resume
	next(t, a, "start")
	waitFor(t, func() bool {
		seats, err := agones.DecodeSeats(fake.GameServer().ObjectMeta.Annotations[agones.SeatsAnnotation("m1")])
		return err == nil && len(seats) == 2
	}, "the room's seats not kept on the GameServer")
	time.Sleep(time.Until(bobExpires) + 100*time.Millisecond) // bob's token has expired
	crash()

	second, hs2, crash2 := runOn(t, fake, cfg)
	waitFor(t, func() bool { return len(second.openIDs()) == 1 }, "not reopened")
	// The copied token alone: refused, as before the restart.
	if m := next(t, mustDial(t, hs2, "m1", aliceTok, ""), "error"); !strings.Contains(m.Error, "used already") {
		t.Fatalf("alice's copied token after the restart: %+v, want refused", m)
	}
	// Alice with her key: back.
	if m := next(t, mustDial(t, hs2, "m1", aliceTok, aliceKey), "welcome"); m.You != "alice" || m.Resume != aliceKey {
		t.Fatalf("alice with her key after the restart: %+v", m)
	}
	// A second restart before bob is back keeps his seat too; he comes
	// back with his key and an expired token.
	crash2()
	// At once: before the keeper reopens the room, his join reads the
	// GameServer and opens it (an expired token was refused then).
	third, hs3, _ := runOn(t, fake, cfg)
	if m := next(t, mustDial(t, hs3, "m1", bobTok, bobKey), "welcome"); m.You != "bob" || m.Resume != bobKey {
		t.Fatalf("bob with his key and an expired token after two restarts: %+v", m)
	}
	if ids := third.openIDs(); len(ids) != 1 {
		t.Fatalf("rooms open after the second restart: %v", ids)
	}
	// A wrong key is no key.
	if m := next(t, mustDial(t, hs3, "m1", aliceTok, strings.Repeat("0", 32)), "error"); !strings.Contains(m.Error, "used already") {
		t.Fatalf("alice's token with a wrong key: %+v", m)
	}
}

// keptOn is what room matchID keeps on the fake's GameServer: the
// digests of its seated players' keys, and the players it let go.
func keptOn(t *testing.T, fake *sdktest.Server, matchID string) (seats map[string]string, letGo []string) {
	t.Helper()
	seats, err := agones.DecodeSeats(fake.GameServer().ObjectMeta.Annotations[agones.SeatsAnnotation(matchID)])
	if err != nil {
		t.Fatal(err)
	}
	for p, d := range seats {
		if d == agones.LetGo {
			letGo = append(letGo, p)
			delete(seats, p)
		}
	}
	slices.Sort(letGo)
	return seats, letGo
}

// mustDial dials room matchID with tok and resume key ("": none).
func mustDial(t *testing.T, hs *httptest.Server, matchID, tok, resume string) *websocket.Conn {
	t.Helper()
	c, _, err := dialResume(t, hs, matchID, tok, resume)
	if err != nil {
		t.Fatalf("dial %s: %v", matchID, err)
	}
	return c
}

// An ended room's kept seats are cleared (the SDK cannot delete an
// annotation): its keys admit nobody to a room of the same id.
func TestAnEndedRoomsSeatsAreCleared(t *testing.T) {
	t.Parallel()
	s, hs, fake := startAgones(t, Config{BestOf: 1, Reuse: true})
	allocate(t, fake, "m1", []string{"a"}, []string{"b"})
	a, b := startGame(t, hs, "m1", "a", "b")
	waitFor(t, func() bool { return fake.GameServer().ObjectMeta.Annotations[agones.SeatsAnnotation("m1")] != "" }, "seats not kept")
	playOneRound(t, a, b)
	next(t, a, "over")
	waitFor(t, func() bool {
		v, set := fake.GameServer().ObjectMeta.Annotations[agones.SeatsAnnotation("m1")]
		return set && v == "" && s.Rooms() == 0
	}, "an ended room's seats still kept")
}

// A backfilled player let go for good stayed among the kept seats, and
// after a restart came back with its key and an expired token to a seat
// the allocator was filling (review of d9caf52). Its key admits nobody
// now.
func TestALetGoPlayersKeyAdmitsNobodyAfterARestart(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := Config{BestOf: 7, ReconnectGrace: 100 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true}
	_, hs, crash := runOn(t, fake, cfg)
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	conns := roomAskingForB2(t, hs, fake)
	b3 := joinBackfill(t, hs, "m1", "b3", bfSeat(1, 2, 2))
	next(t, b3, "resume")
	k, _ := resumeKeys.Load(t.Name() + "/m1/b3")
	key, _ := k.(string)
	b3.Close()
	if m := next(t, conns["a1"], "player_gone"); m.Player != "b3" {
		t.Fatalf("want b3 gone: %+v", m)
	}
	waitFor(t, func() bool {
		seats, letGo := keptOn(t, fake, "m1")
		_, kept := seats["b3"]
		return len(seats) == 3 && !kept && slices.Equal(letGo, []string{"b2", "b3"})
	}, "b3, let go, still among the kept seats")
	crash()

	second, hs2, _ := runOn(t, fake, cfg)
	waitFor(t, func() bool { return len(second.openIDs()) == 1 }, "not reopened")
	expired := seatedToken(t, "m1", "b3", bfSeat(1, 2, 2), time.Now().Add(-time.Minute))
	if m := next(t, mustDial(t, hs2, "m1", expired, key), "error"); !strings.Contains(m.Error, "expired") {
		t.Fatalf("b3, let go before the restart, with its key and an expired token: %+v, want refused", m)
	}
}

// The kept seats of a room whose backfilled player did not come back
// after a restart grew by one a restart: the player who filled the seat
// was kept beside the one who left it (review of d9caf52; at 101 a
// free-for-all's seats would not read back, and every key would be
// lost). The seats of players not back when their hold ends are dropped.
func TestKeptSeatsStayWithinTheRoom(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	cfg := Config{BestOf: 7, ReconnectGrace: 200 * time.Millisecond, IdleTimeout: time.Hour, Reuse: true}
	_, hs, crash := runOn(t, fake, cfg)
	waitFor(t, func() bool { return fake.GameServer().Status.State == "Ready" }, "never Ready")
	roomAskingForB2(t, hs, fake)
	next(t, joinBackfill(t, hs, "m1", "x0", bfSeat(1, 2, 2)), "resume")
	backfillAnnotation(t, fake, "m1", "")
	kept := func() map[string]string {
		seats, letGo := keptOn(t, fake, "m1")
		if !slices.Equal(letGo, []string{"b2"}) {
			t.Fatalf("the players let go kept as %v, want b2", letGo)
		}
		return seats
	}
	waitFor(t, func() bool { _, ok := kept()["x0"]; return ok }, "x0 not kept")
	for cycle := 1; cycle <= 3; cycle++ {
		crash()
		var s *Server
		s, hs, crash = runOn(t, fake, cfg)
		waitFor(t, func() bool { return len(s.openIDs()) == 1 }, "not reopened")
		for i, p := range []string{"a1", "a2", "b1"} {
			next(t, joinBackfill(t, hs, "m1", p, bfSeat(i/2, 2, 2)), "welcome")
		}
		// The last cycle's backfilled player never comes back: once its
		// hold runs out the seat is asked for, and filled.
		var req play.Backfill
		waitFor(t, func() bool {
			for _, b := range statusOf(t, hs).Backfill {
				req = b
			}
			return req.MatchID != ""
		}, "never asked after the hold")
		backfillAnnotation(t, fake, "m1", agones.EncodeBackfill(req))
		p := fmt.Sprint("x", cycle)
		next(t, joinBackfill(t, hs, "m1", p, bfSeat(1, 2, 2)), "welcome")
		waitFor(t, func() bool { _, ok := kept()[p]; return ok }, p+" not kept")
		if seats := kept(); len(seats) > 4 {
			t.Fatalf("restart %d: a room of 4 seats keeps %d: %v", cycle, len(seats), slices.Sorted(maps.Keys(seats)))
		}
	}
}
