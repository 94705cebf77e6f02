package sdktest

import (
	"encoding/json"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

func TestFakePassesTheContract(t *testing.T) {
	s := New(t, ContractOptions())
	RunContract(t, s.URL)
	if s.Healths() != 1 {
		t.Fatalf("health pings %d", s.Healths())
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
