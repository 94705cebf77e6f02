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

// EncodeSeats is the annotation value of seats, player id to the digest
// of its resume key: a JSON object ("" for none).
func EncodeSeats(seats map[string]string) string {
	if len(seats) == 0 {
		return ""
	}
	v, _ := json.Marshal(seats) // strings only: cannot fail; keys sorted
	return string(v)
}

// DecodeSeats reads the value of a SeatsAnnotation: "" is none; more
// players than a room seats, or a digest that is not one, is an error.
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
	if len(seats) > play.MaxPlayers {
		return nil, fmt.Errorf("seats annotation: %d seats, a room has %d at most", len(seats), play.MaxPlayers)
	}
	for _, p := range slices.Sorted(maps.Keys(seats)) {
		if d := seats[p]; p == "" || !WellFormedKey(d) {
			return nil, fmt.Errorf("seats annotation: player %q with digest %q", p, d)
		}
	}
	return seats, nil
}
