package agones

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// A room's seats, kept across a restart in place. A join token admits
// once: the player who takes a seat with it is given a resume key, and
// comes back only with that key (so a token copied from a URL or a log
// cannot take the seat), even once the token has expired. The keys lived
// in the process alone, so a game server restarted in place (a crash, an
// OOM kill; Agones restarts the container, the GameServer stays) let a
// copied token take a seat again and shut its player out once the token
// expired. The game server therefore writes, for each room, a digest of
// each seated player's key to the GameServer (SeatsAnnotation; "" once
// the room ended, as the SDK cannot delete an annotation), and a process
// restarted in place admits a player so kept with that key alone.
//
// The same annotation names the players the room let go for good
// (backfill), with the digest LetGo: they may not come back, and their
// seats are another's. The players List cannot say it: it is every
// room's, and a player let go here may be seated by another room of the
// same server since.

// seatsKeyPrefix + match id is the key the game server gives
// SetAnnotation for its room's kept seats.
const seatsKeyPrefix = "seats-"

// SeatsKey is the key the game server gives SetAnnotation for the kept
// seats of match matchID's room; the GameServer then carries it as
// SeatsAnnotation(matchID).
func SeatsKey(matchID string) string { return seatsKeyPrefix + matchID }

// SeatsAnnotation is the GameServer annotation holding the kept seats of
// match matchID's room: "agones.dev/sdk-seats-<matchID>".
func SeatsAnnotation(matchID string) string {
	return "agones.dev/" + sdkPrefixName + SeatsKey(matchID)
}

// KeyDigestLen is the length of a resume key's digest in the annotation
// (hex), and of a resume key.
const KeyDigestLen = 32

// WellFormedKey reports whether s has the form of a resume key, and of a
// key's digest in the annotation: KeyDigestLen lowercase hexadecimal
// digits.
func WellFormedKey(s string) bool {
	return len(s) == KeyDigestLen && strings.Trim(s, "0123456789abcdef") == ""
}

// LetGo is the digest the kept seats give a player the room let go for
// good. No resume key has it (a key's digest is the first 128 bits of
// its SHA-256, and LetGo's are all zero), so an older game server,
// which reads it as a kept seat, admits nobody with it. (One that finds
// more than play.MaxPlayers entries, a room of over 50 seats that let
// players go, reads no kept seats: their players come back with their
// tokens while these last.)
const LetGo = "00000000000000000000000000000000"

// MaxLetGo bounds the players the kept seats name as let go, besides the
// seated ones: as many as a room seats (an allocation seats that many at
// most, and each of them may be let go in turn as backfilled players
// take their seats).
const MaxLetGo = play.MaxPlayers

// EncodeSeats is the annotation value of seats, player id to the digest
// of its resume key (LetGo for a player let go): a JSON object ("" for
// none).
func EncodeSeats(seats map[string]string) string {
	if len(seats) == 0 {
		return ""
	}
	v, _ := json.Marshal(seats) // strings only: cannot fail; keys sorted
	return string(v)
}

// DecodeSeats reads the value of a SeatsAnnotation: "" is none; more
// players seated than a room seats, more let go than MaxLetGo, or a
// digest that is not one, is an error.
func DecodeSeats(v string) (map[string]string, error) {
	if v == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(v))
	var seats map[string]string
	if err := dec.Decode(&seats); err != nil {
		return nil, fmt.Errorf("seats annotation: %w", err)
	}
	if dec.More() {
		return nil, errors.New("seats annotation: data after the seats")
	}
	letGo := 0
	for _, d := range seats {
		if d == LetGo {
			letGo++
		}
	}
	if len(seats)-letGo > play.MaxPlayers || letGo > MaxLetGo {
		return nil, fmt.Errorf("seats annotation: %d seats and %d let go, a room has %d seats at most and lets %d go",
			len(seats)-letGo, letGo, play.MaxPlayers, MaxLetGo)
	}
	for _, p := range slices.Sorted(maps.Keys(seats)) {
		if d := seats[p]; p == "" || !WellFormedKey(d) {
			return nil, fmt.Errorf("seats annotation: player %q with digest %q", p, d)
		}
	}
	return seats, nil
}
