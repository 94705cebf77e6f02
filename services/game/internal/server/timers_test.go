package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/quickmatch-dev/quickmatch/pkg/jointoken"
)

// A player who never throws cannot keep a room open by sending anything
// else: junk, a move the game refuses, a second move in a round, a join
// the room refuses. Only a move accepted (or a seat taken) restarts the
// idle timeout, so the player the round waits for forfeits.
func TestIdleTimeoutCountsOnlyProgress(t *testing.T) {
	t.Parallel()
	_, hs := startServer(t, Config{BestOf: 3, IdleTimeout: 300 * time.Millisecond})
	a, b := startGame(t, hs, "m1", "alice", "bob")
	move(t, a, "rock")
	move(t, a, "paper") // refused: alice has moved this round
	next(t, a, "error")
	carol := join(t, hs, "m1", "carol")
	next(t, carol, "error") // refused: the room is full
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for _, junk := range []string{`{"type":"chat"}`, `{"type":"move","move":"lizard"}`, `not json`} {
				if b.WriteMessage(websocket.TextMessage, []byte(junk)) != nil {
					return
				}
			}
		}
	}()
	m := next(t, a, "over") // before the fix bob's junk kept the room open
	if m.Winner != "alice" || !strings.Contains(m.Reason, "bob did not move") {
		t.Fatalf("over %+v, want bob to forfeit", m)
	}
}

// A player who drops while the room waits for the others gets the
// reconnect grace when the game starts, as one who drops during the
// game does: before, the game waited IdleTimeout for them.
func TestDropBeforeTheStartGetsTheGrace(t *testing.T) {
	t.Parallel()
	s, err := New(Config{JoinKeys: keys, BestOf: 3, IdleTimeout: time.Hour, ReconnectGrace: 100 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	left := make(chan struct{})
	s.onEvent = func(_ string, ev event) {
		if ev.kind == evLeave && ev.client.player == "b" {
			close(left) // the room handles b's leave next
		}
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	seat := func(team int) jointoken.Seat { return jointoken.Seat{Team: team, Teams: 2, TeamSize: 2} }
	a := joinSeated(t, hs, "m1", "a", seat(0), time.Minute)
	next(t, a, "welcome")
	b := joinSeated(t, hs, "m1", "b", seat(0), time.Minute)
	next(t, b, "welcome")
	b.Close()
	<-left
	for i, p := range []string{"c", "d"} {
		next(t, joinSeated(t, hs, "m1", p, seat(1), time.Minute), []string{"welcome", "start"}[i])
	}
	next(t, a, "start")
	if m := next(t, a, "player_left"); m.Player != "b" {
		t.Fatalf("player_left %+v", m)
	}
	m := next(t, a, "over")
	if !slices.Equal(m.Winners, []string{"c", "d"}) || !strings.Contains(m.Reason, "b did not come back") {
		t.Fatalf("over %+v, want b to forfeit", m)
	}
}

// joinSeated joins player to room matchID with a token of seat that
// expires after ttl.
func joinSeated(t *testing.T, hs *httptest.Server, matchID, player string, seat jointoken.Seat, ttl time.Duration) *websocket.Conn {
	t.Helper()
	key, _ := resumeKeys.Load(t.Name() + "/" + matchID + "/" + player) // a seat it took before: its key
	resume, _ := key.(string)
	c, _, err := dialResume(t, hs, matchID, seatedToken(t, matchID, player, seat, time.Now().Add(ttl)), resume)
	if err != nil {
		t.Fatalf("%s joins %s: %v", player, matchID, err)
	}
	return c
}

func seatedToken(t *testing.T, matchID, player string, seat jointoken.Seat, expires time.Time) string {
	t.Helper()
	tok, err := signer.Sign(jointoken.Grant{MatchID: matchID, PlayerID: player, Expires: expires, Seat: seat})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A grace that ran out while its player was coming back is stale once
// they are back: if they drop again, their new grace counts, not the
// old expiry, which may still be queued for the room.
func TestStaleGraceDoesNotForfeit(t *testing.T) {
	t.Parallel()
	r := newRoom("m1", seating{}, Config{BestOf: 3, ReconnectGrace: time.Millisecond, IdleTimeout: time.Hour},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	conn := func(player, resume string) *client {
		c := newClient(player, resume, nil)
		c.send = make(chan []byte, 64)
		return c
	}
	alice, bob := conn("alice", ""), conn("bob", "")
	r.handle(event{kind: evJoin, client: alice})
	r.handle(event{kind: evJoin, client: bob})
	r.handle(event{kind: evLeave, client: alice})
	waitFor(t, func() bool { return len(r.expired) == 1 }, "alice's grace never ran out")
	back := conn("alice", alice.resume)         // the key her welcome gave
	r.handle(event{kind: evJoin, client: back}) // back in time: the room has not seen the expiry
	r.cfg.ReconnectGrace = time.Hour
	r.handle(event{kind: evLeave, client: back}) // gone again, with an hour's grace
	go r.run()
	waitFor(t, func() bool { return len(r.expired) == 0 }, "the room never took the expiry")
	if !r.send(event{kind: evMove, client: bob, msgType: "move", text: "rock"}) {
		t.Fatal("the room ended: alice forfeited on her first grace's expiry, with an hour of her second left")
	}
	r.send(event{kind: evShutdown})
}

// A player whose join token has expired comes back to their seat with
// the resume key of their first connection: a game may outlast the
// token. The token is still checked (signature, room, player), and it
// opens no room and takes no free seat.
func TestExpiredTokenResumesASeat(t *testing.T) {
	t.Parallel()
	_, skew, hs := startSkewed(t, Config{ReconnectGrace: 5 * time.Second})
	seat := func(team int) jointoken.Seat { return jointoken.Seat{Team: team, Teams: 2, TeamSize: 2} }
	tokens, resume := map[string]string{}, map[string]string{}
	for i, p := range []string{"a", "b", "c"} {
		tokens[p] = seatedToken(t, "m1", p, seat(i/2), time.Now().Add(time.Minute))
		c, _, err := dial(t, hs, "m1", tokens[p])
		if err != nil {
			t.Fatal(err)
		}
		resume[p] = next(t, c, "welcome").Resume
		if p == "a" {
			c.Close()
		}
	}
	skew.Store(int64(time.Hour)) // every token has expired
	expiredD := seatedToken(t, "m1", "d", seat(1), time.Now().Add(time.Minute))
	refused := []struct {
		name, room, token, resume string
		status                    int
	}{
		{"no resume key", "m1", tokens["a"], "", http.StatusForbidden},
		{"a room not open", "m9", seatedToken(t, "m9", "a", seat(0), time.Now()), resume["a"], http.StatusForbidden},
		{"another room's token", "m2", tokens["a"], resume["a"], http.StatusForbidden},
	}
	for _, tt := range refused {
		if _, res, err := dialResume(t, hs, tt.room, tt.token, tt.resume); err == nil || res.StatusCode != tt.status {
			t.Errorf("%s: %v, want %d", tt.name, err, tt.status)
		}
	}
	a, _, err := dialResume(t, hs, "m1", tokens["a"], resume["a"]) // her first connection dropped
	if err != nil {
		t.Fatalf("a coming back with an expired token and her resume key: %v", err)
	}
	if m := next(t, a, "welcome"); m.Resume != resume["a"] {
		t.Fatalf("welcome %+v", m)
	}
	d, _, err := dialResume(t, hs, "m1", expiredD, resume["c"]) // a free seat: refused by the room
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, d, "error"); !strings.Contains(m.Error, "expired") {
		t.Fatalf("d with an expired token took a seat: %+v", m)
	}
	wrong, _, err := dialResume(t, hs, "m1", tokens["b"], resume["a"]) // b's seat, a's key
	if err != nil {
		t.Fatal(err)
	}
	next(t, wrong, "error")
	next(t, joinSeated(t, hs, "m1", "d", seat(1), 2*time.Hour), "start")
	next(t, a, "start")
}
