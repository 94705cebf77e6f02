package agones_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
	"github.com/quickmatch-dev/quickmatch/pkg/play"
)

// TestSeatsAnnotation: the key the game server sets through the SDK is
// the one it reads back, valid for Kubernetes for every match id; what
// it writes reads back; "" is none; what no game server writes is an
// error, not seats.
func TestSeatsAnnotation(t *testing.T) {
	t.Parallel()
	id := strings.Repeat("m", agones.MaxMatchIDLen)
	if got, want := agones.SeatsAnnotation(id), sdk.LabelPrefix+agones.SeatsKey(id); got != want {
		t.Fatalf("SeatsAnnotation = %q, the SDK stores %q", got, want)
	}
	if _, name, _ := strings.Cut(agones.SeatsAnnotation(id), "/"); len(name) > 63 {
		t.Errorf("name part of %d characters, Kubernetes takes 63", len(name))
	}
	digest := strings.Repeat("0a", agones.KeyDigestLen/2)
	seats := map[string]string{"alice": digest, "bob": digest}
	if got, err := agones.DecodeSeats(agones.EncodeSeats(seats)); err != nil || !maps.Equal(got, seats) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if got, err := agones.DecodeSeats(""); got != nil || err != nil || agones.EncodeSeats(nil) != "" {
		t.Fatalf("none: %v %v %q", got, err, agones.EncodeSeats(nil))
	}
	many := map[string]string{}
	for i := range play.MaxPlayers + 1 {
		many[fmt.Sprint("p", i)] = digest
	}
	// A full room that let as many go reads back; one more let go
	// does not.
	full := map[string]string{}
	for i := range play.MaxPlayers {
		full[fmt.Sprint("p", i)] = digest
		full[fmt.Sprint("gone", i)] = agones.LetGo
	}
	if got, err := agones.DecodeSeats(agones.EncodeSeats(full)); err != nil || !maps.Equal(got, full) {
		t.Fatalf("a full room that let %d players go: %v", agones.MaxLetGo, err)
	}
	if !agones.WellFormedKey(agones.LetGo) {
		t.Error("LetGo is not a digest: an older game server would refuse the annotation")
	}
	full["one more"] = agones.LetGo
	for name, v := range map[string]string{
		"not JSON":      "alice",
		"a short key":   `{"alice":"0a0a"}`,
		"not hex":       `{"alice":"` + strings.Repeat("z", agones.KeyDigestLen) + `"}`,
		"no player":     `{"":"` + digest + `"}`,
		"data after":    agones.EncodeSeats(seats) + `{}`,
		"too many":      agones.EncodeSeats(many),
		"too many gone": agones.EncodeSeats(full),
		"not an object": `["` + digest + `"]`,
	} {
		if got, err := agones.DecodeSeats(v); err == nil {
			t.Errorf("%s: %v, want an error", name, got)
		}
	}
}
