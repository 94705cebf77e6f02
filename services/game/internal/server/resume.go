package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// Resume keys (pkg/agones/seats.go says why they are kept). A room holds
// the digest of each seated player's key (room.seats), never the key:
// the player holds it, and it is the digest the GameServer keeps. A room
// a process restarted in place reopens starts with the digests the last
// one kept (room.kept): a player so kept is admitted with its key only,
// even with an expired token, and then takes its seat again as any
// player does, with the same key.

// newResumeKey is a fresh resume key: agones.KeyDigestLen hexadecimal
// digits (agones.WellFormedKey).
func newResumeKey() string {
	var b [agones.KeyDigestLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// keyDigest is the digest of resume key key.
func keyDigest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])[:agones.KeyDigestLen]
}

// keyMatches reports whether key's digest is digest, in constant time.
func keyMatches(key, digest string) bool {
	return subtle.ConstantTimeCompare([]byte(keyDigest(key)), []byte(digest)) == 1
}

// giveKey seats c's player under a resume key: the one it came back with
// when the room kept its seat from before a restart, else a new one,
// which c carries to its welcome.
func (r *room) giveKey(c *client) {
	if _, kept := r.kept[c.player]; kept {
		delete(r.kept, c.player) // c.resume matched it (join)
	} else {
		c.resume = newResumeKey()
	}
	r.seats[c.player] = keyDigest(c.resume)
	r.keysChanged()
}

// cameBack follows the return of c's player, seated here already, on a
// new connection: c is told where the room stands, and the others only
// that the player is back (nothing before the game: nobody was told they
// had gone). Their state has not changed, and the whole of it, sent to
// every player at each return, let a player looping reconnects within
// its allowance cost a room of n players O(n²) bytes.
func (r *room) cameBack(c *client) {
	if r.game == nil {
		r.push(c, r.waiting())
		return
	}
	r.push(c, r.resumed())
	r.broadcastBut(c, message{Type: "player_back", Player: c.player})
}

// resumed is the state of the game: its players, teams and score.
func (r *room) resumed() message {
	return message{Type: "resume", Players: r.players(), Teams: r.teams, BestOf: r.cfg.BestOf,
		Score: r.game.Score(), FreeForAll: r.game.FreeForAll()}
}

// waiting is the state of a room whose game has not started: who is
// seated, and how many it starts with.
func (r *room) waiting() message {
	return message{Type: "waiting", Players: r.players(), Teams: r.teams, Seats: r.starts()}
}

// forgetKept drops the kept seats of the players the room does not seat
// (off its roster: players the last process had backfilled) when the
// seats held for them are released (releaseHeld): they hold none now,
// and a kept seat nobody takes back must not outlive the room's seats.
func (r *room) forgetKept() {
	n := len(r.kept)
	maps.DeleteFunc(r.kept, func(p, _ string) bool {
		return !slices.ContainsFunc(r.roster, func(t []string) bool { return slices.Contains(t, p) })
	})
	if len(r.kept) != n {
		r.keysChanged()
	}
}

// keysChanged hands what the room keeps across a restart to the server
// (with Agones; keptValue).
func (r *room) keysChanged() {
	if r.keep == nil {
		return
	}
	r.keep(r.matchID, r.keptValue())
}

// keptValue is what the room keeps across a restart in place
// (agones.EncodeSeats): the digests of its seated players' keys, those
// kept from before a restart and not taken back yet included (a second
// restart must not lose them), and the players it let go for good
// (agones.LetGo). Every one of the allocation's it let go is named: the
// next process frees their seats by it (seating.reopened); then the
// backfilled ones up to agones.MaxLetGo in all (one left out may come
// back after a restart while their token lasts).
func (r *room) keptValue() string {
	all := maps.Clone(r.kept)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, r.seats)
	allocated, n := r.seating.players(), 0
	for _, ofAllocation := range []bool{true, false} {
		for _, p := range slices.Sorted(maps.Keys(r.backfill.left)) {
			if slices.Contains(allocated, p) == ofAllocation && n < agones.MaxLetGo {
				all[p] = agones.LetGo
				n++
			}
		}
	}
	return agones.EncodeSeats(all)
}

// keysChanged records room matchID's seats as its room handed them over
// (agones.EncodeSeats); the keeper writes them to the GameServer.
func (s *Server) keysChanged(matchID, seats string) {
	s.mu.Lock()
	s.seats[matchID] = seats
	s.mu.Unlock()
	s.nudge()
}

// syncSeats writes every open room's seats to its annotation
// (agones.SeatsAnnotation) where gs differs, and "" for every room that
// has one and has ended (here, or is off the rooms List); a live room not
// opened here yet keeps what it has. True if every write succeeded.
func (s *Server) syncSeats(ctx context.Context, gs sdk.GameServer) bool {
	want := map[string]string{}
	prefix := agones.SeatsAnnotation("")
	live := liveIDs(gs)
	s.mu.Lock()
	for key, v := range gs.ObjectMeta.Annotations {
		if id, ok := strings.CutPrefix(key, prefix); ok && v != "" {
			if _, ended := s.ended[id]; ended || !slices.Contains(live, id) {
				want[id] = ""
			}
		}
	}
	for id, v := range s.seats {
		want[id] = v
	}
	s.mu.Unlock()
	return s.setAnnotations(ctx, gs, want, agones.SeatsKey, agones.SeatsAnnotation, "a room's kept seats")
}

// keptSeats is what a process before this one kept for room matchID on
// gs: the seats of the players the players List still holds (a player
// whose held seat was released holds none), and the players it let go
// for good (never nil); or why it cannot be read.
func keptSeats(gs sdk.GameServer, matchID string) (kept map[string]string, letGo map[string]bool, err error) {
	kept, err = agones.DecodeSeats(gs.ObjectMeta.Annotations[agones.SeatsAnnotation(matchID)])
	if err != nil {
		return nil, nil, err
	}
	players, listed := gs.Status.Lists[agones.ListPlayers]
	letGo = map[string]bool{}
	maps.DeleteFunc(kept, func(p, digest string) bool {
		if digest == agones.LetGo {
			letGo[p] = true
			return true
		}
		return listed && !slices.Contains(players.Values, p)
	})
	return kept, letGo, nil
}
