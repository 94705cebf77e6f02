package sdktest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

// id64 is a 64-character match id: quickmatch.dev/match-<id64> has a name
// part of 70 characters, over the 63 Kubernetes allows.
var id64 = strings.Repeat("0123456789abcdef", 4)

// TestAllocateRefusesWhatAgonesRefuses: each request here is one Agones'
// GameServerAllocation.Validate refuses with 422. The fake refuses it
// before matching anything, whichever selector would have matched (the
// first one here matches the Ready server, so the bad one is never
// reached), and changes nothing.
func TestAllocateRefusesWhatAgonesRefuses(t *testing.T) {
	s := ready(t, 2, 4)
	ok := agones.GameServerSelector{GameServerState: "Ready"}
	sel := func(bad agones.GameServerSelector) agones.GameServerAllocationSpec {
		return agones.GameServerAllocationSpec{Selectors: []agones.GameServerSelector{ok, bad}}
	}
	expr := func(key, op string, values ...string) agones.GameServerSelector {
		return agones.GameServerSelector{MatchExpressions: []agones.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
	}
	meta := func(labels, annotations map[string]string) agones.GameServerAllocationSpec {
		return agones.GameServerAllocationSpec{Selectors: []agones.GameServerSelector{ok}, Metadata: &agones.MetaPatch{Labels: labels, Annotations: annotations}}
	}
	for _, tt := range []struct {
		name string
		spec agones.GameServerAllocationSpec
		path string // in Agones' message
	}{
		{"annotation name part over 63", meta(nil, map[string]string{agones.MatchAnnotationPrefix + id64: "{}"}), "spec.metadata.annotations"},
		{"annotation key with a space", meta(nil, map[string]string{"a b": "v"}), "spec.metadata.annotations"},
		{"label value over 63", meta(map[string]string{"l": strings.Repeat("v", 64)}, nil), "spec.metadata.labels"},
		{"label key prefix not a DNS name", meta(map[string]string{"Bad_Prefix/l": "v"}, nil), "spec.metadata.labels"},
		{"unknown operator", sel(expr("k", "Like", "v")), "spec.selectors[1].labelSelector"},
		{"In without values", sel(expr("k", "In")), "spec.selectors[1].labelSelector"},
		{"Exists with values", sel(expr("k", "Exists", "v")), "spec.selectors[1].labelSelector"},
		{"matchLabels key invalid", sel(agones.GameServerSelector{MatchLabels: map[string]string{"-k": "v"}}), "spec.selectors[1].labelSelector"},
		{"matchLabels value invalid", sel(agones.GameServerSelector{MatchLabels: map[string]string{"k": "v v"}}), "spec.selectors[1].labelSelector"},
		{"state Reserved", sel(agones.GameServerSelector{GameServerState: "Reserved"}), "spec.selectors[1].gameServerState"},
		{"counter minCount negative", sel(agones.GameServerSelector{Counters: map[string]agones.CounterSelector{"sessions": {MinCount: -1}}}), "spec.selectors[1].counters[sessions].minCount"},
		{"counter maxAvailable below min", sel(agones.GameServerSelector{Counters: map[string]agones.CounterSelector{"sessions": {MinAvailable: 2, MaxAvailable: 1}}}), "spec.selectors[1].counters[sessions]"},
		{"list minAvailable negative", sel(agones.GameServerSelector{Lists: map[string]agones.ListSelector{"rooms": {MinAvailable: -1}}}), "spec.selectors[1].lists[rooms].minAvailable"},
		{"list maxAvailable below min", sel(agones.GameServerSelector{Lists: map[string]agones.ListSelector{"rooms": {MinAvailable: 3, MaxAvailable: 2}}}), "spec.selectors[1].lists[rooms]"},
		{"scheduling", agones.GameServerAllocationSpec{Scheduling: "Spread"}, "spec.scheduling"},
		{"priority type", agones.GameServerAllocationSpec{Priorities: []agones.Priority{{Type: "Label", Key: "rooms"}}}, "spec.priorities[0]"},
		{"priority key", agones.GameServerAllocationSpec{Priorities: []agones.Priority{{Type: "List"}}}, "spec.priorities[0]"},
		{"priority order", agones.GameServerAllocationSpec{Priorities: []agones.Priority{{Type: "List", Key: "rooms", Order: "Up"}}}, "spec.priorities[0]"},
		{"counter amount negative", agones.GameServerAllocationSpec{Counters: map[string]agones.CounterAction{"sessions": {Action: "Increment", Amount: -1}}}, "spec.counters[sessions].amount"},
		{"counter action without amount", agones.GameServerAllocationSpec{Counters: map[string]agones.CounterAction{"sessions": {Action: "Increment"}}}, "spec.counters[sessions]"},
		{"counter amount without action", agones.GameServerAllocationSpec{Counters: map[string]agones.CounterAction{"sessions": {Amount: 1}}}, "spec.counters[sessions]"},
		{"list capacity negative", agones.GameServerAllocationSpec{Lists: map[string]agones.ListAction{"rooms": {Capacity: ptr(-1)}}}, "spec.lists[rooms].capacity"},
	} {
		before := s.GameServer()
		err := s.Allocate(tt.spec)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s: %v; want ErrInvalid naming %s", tt.name, err, tt.path)
		}
		if after := s.GameServer(); !reflect.DeepEqual(before, after) {
			t.Errorf("%s: a refused allocation changed the server", tt.name)
		}
	}
	// What Agones accepts: a 63-character name part, a list capacity
	// above 1000 (refused later, as a warning), the defaults.
	fine := agones.GameServerAllocationSpec{
		Selectors:  []agones.GameServerSelector{ok, expr("k", "NotIn", "v")},
		Priorities: []agones.Priority{{Type: "List", Key: agones.ListRooms}},
		Metadata:   &agones.MetaPatch{Annotations: map[string]string{agones.MatchAnnotationPrefix + id64[:57]: strings.Repeat("x", 4096)}},
		Lists:      map[string]agones.ListAction{agones.ListRooms: {Capacity: ptr(1001)}},
	}
	if err := s.Allocate(fine); err != nil {
		t.Fatalf("a request Agones accepts: %v", err)
	}
}
