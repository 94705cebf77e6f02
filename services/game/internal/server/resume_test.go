package server

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
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
	aliceTok, bobTok := token(t, "m1", "alice", time.Minute), token(t, "m1", "bob", 1500*time.Millisecond)
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
	time.Sleep(1600 * time.Millisecond) // bob's token has expired
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
	third, hs3, _ := runOn(t, fake, cfg)
	waitFor(t, func() bool { return len(third.openIDs()) == 1 }, "not reopened again")
	if m := next(t, mustDial(t, hs3, "m1", bobTok, bobKey), "welcome"); m.You != "bob" || m.Resume != bobKey {
		t.Fatalf("bob with his key and an expired token after two restarts: %+v", m)
	}
	// A wrong key is no key.
	if m := next(t, mustDial(t, hs3, "m1", aliceTok, strings.Repeat("0", 32)), "error"); !strings.Contains(m.Error, "used already") {
		t.Fatalf("alice's token with a wrong key: %+v", m)
	}
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
