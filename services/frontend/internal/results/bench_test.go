package results

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// BenchmarkResultOfUntrackedPlayer is what Run spends on each result of
// a player it follows no ticket of: every other frontend's players'
// results reach it too.
func BenchmarkResultOfUntrackedPlayer(b *testing.B) {
	subj := events.Subjects{}
	t := &Tracker{prefix: subj.Result("")}
	s := &state{tickets: map[string]*ticket{}, byPlayer: map[string]map[string]*ticket{}}
	for i := range 10_000 {
		p := fmt.Sprintf("p%d", i)
		s.byPlayer[p] = map[string]*ticket{"t" + p: {id: "t" + p, player: p}}
	}
	m := &nats.Msg{Subject: subj.Result("stranger"), Data: []byte(`{"ticket_id":"x"}`)}
	b.ReportAllocs()
	for b.Loop() {
		t.result(s, m)
	}
}
