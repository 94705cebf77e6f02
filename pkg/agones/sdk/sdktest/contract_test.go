package sdktest

import (
	"encoding/json"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

func TestFakePassesTheContract(t *testing.T) {
	s := New(t, Options{Counters: map[string]int64{"rooms": 2}, Lists: map[string]int64{"players": 2}})
	RunContract(t, s.URL)
	if s.Healths() != 1 {
		t.Fatalf("health pings %d", s.Healths())
	}
}

func TestFakeAllocatePlaysAgones(t *testing.T) {
	s := New(t, Options{Counters: map[string]int64{"rooms": 1}, Lists: map[string]int64{"players": 2}})
	if err := s.Allocate(map[string]string{"quickmatch.dev/match-m1": "a,b"}, map[string]int64{"rooms": 1}, map[string][]string{"players": {"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	gs := s.GameServer()
	if gs.Status.State != "Allocated" || gs.Status.Counters["rooms"].Count != 1 || len(gs.Status.Lists["players"].Values) != 2 || gs.ObjectMeta.Annotations["quickmatch.dev/match-m1"] != "a,b" {
		t.Fatalf("%+v", gs)
	}
	if err := s.Allocate(nil, map[string]int64{"rooms": 1}, nil); err == nil {
		t.Fatal("allocated past the rooms capacity")
	}
}

// FuzzGatewayAnswers feeds the client's decoders what a gateway might say.
func FuzzGatewayAnswers(f *testing.F) {
	f.Add([]byte(`{"object_meta":{"name":"gs"},"status":{"state":"Ready","counters":{"rooms":{"count":"1","capacity":"10"}}}}`))
	f.Add([]byte(`{"count":"x"}`))
	f.Add([]byte(`{"code":2,"message":"not found"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var gs sdk.GameServer
		_ = json.Unmarshal(data, &gs)
		var c sdk.Counter
		_ = json.Unmarshal(data, &c)
	})
}
