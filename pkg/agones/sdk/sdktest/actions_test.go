package sdktest

import (
	"reflect"
	"slices"
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

func ptr(v int64) *int64 { return &v }

// TestApplyListAction: Agones' ListAction.ListActions order, capacity,
// then addValues, then deleteValues, each step on what the one before
// left.
func TestApplyListAction(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		in      agones.ListState
		a       agones.ListAction
		want    agones.ListState
		wantErr bool
	}{
		{"add then delete the same value", agones.ListState{Capacity: 4, Values: []string{"a"}},
			agones.ListAction{AddValues: []string{"b"}, DeleteValues: []string{"b"}}, agones.ListState{Capacity: 4, Values: []string{"a"}}, false},
		{"a delete frees no room for the adds", agones.ListState{Capacity: 2, Values: []string{"a", "b"}},
			agones.ListAction{AddValues: []string{"c"}, DeleteValues: []string{"a"}}, agones.ListState{Capacity: 2, Values: []string{"b"}}, false},
		{"capacity cuts before the adds", agones.ListState{Capacity: 4, Values: []string{"a", "b", "c"}},
			agones.ListAction{Capacity: ptr(2), AddValues: []string{"d"}}, agones.ListState{Capacity: 2, Values: []string{"a", "b"}}, false},
		{"capacity raised first makes room", agones.ListState{Capacity: 1, Values: []string{"a"}},
			agones.ListAction{Capacity: ptr(3), AddValues: []string{"b", "a", "c", "d"}}, agones.ListState{Capacity: 3, Values: []string{"a", "b", "c"}}, false},
		{"absent deletes ignored", agones.ListState{Capacity: 3, Values: []string{"a"}},
			agones.ListAction{DeleteValues: []string{"z"}}, agones.ListState{Capacity: 3, Values: []string{"a"}}, false},
		{"capacity above 1000 refused, the rest applied", agones.ListState{Capacity: 2, Values: []string{"a"}},
			agones.ListAction{Capacity: ptr(1001), AddValues: []string{"b", "c"}, DeleteValues: []string{"a"}}, agones.ListState{Capacity: 2, Values: []string{"b"}}, true},
		{"negative capacity refused", agones.ListState{Capacity: 2, Values: []string{"a"}},
			agones.ListAction{Capacity: ptr(-1)}, agones.ListState{Capacity: 2, Values: []string{"a"}}, true},
		{"capacity 1000 allowed", agones.ListState{Capacity: 2},
			agones.ListAction{Capacity: ptr(1000)}, agones.ListState{Capacity: 1000}, false},
	} {
		in := agones.ListState{Capacity: tt.in.Capacity, Values: slices.Clone(tt.in.Values)}
		got, err := ApplyListAction(in, tt.a)
		if !slices.Equal(got.Values, tt.want.Values) || got.Capacity != tt.want.Capacity || (err != nil) != tt.wantErr {
			t.Errorf("%s: %+v, %v; want %+v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
		if !reflect.DeepEqual(in.Values, tt.in.Values) {
			t.Errorf("%s: the input values changed to %v", tt.name, in.Values)
		}
	}
}

// TestApplyCounterAction: Agones' CounterAction.CounterActions, capacity
// first (count cut to it), then the action, clamped to [0, capacity].
func TestApplyCounterAction(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		in      agones.CountCap
		a       agones.CounterAction
		want    agones.CountCap
		wantErr bool
	}{
		{"increment clamped at capacity", agones.CountCap{Count: 1, Capacity: 3}, agones.CounterAction{Action: "Increment", Amount: 5}, agones.CountCap{Count: 3, Capacity: 3}, false},
		{"decrement clamped at 0", agones.CountCap{Count: 1, Capacity: 3}, agones.CounterAction{Action: "Decrement", Amount: 5}, agones.CountCap{Count: 0, Capacity: 3}, false},
		{"capacity cuts the count, then increments", agones.CountCap{Count: 5, Capacity: 9}, agones.CounterAction{Action: "Increment", Amount: 1, Capacity: ptr(2)}, agones.CountCap{Count: 2, Capacity: 2}, false},
		{"negative capacity refused, the action applied", agones.CountCap{Count: 1, Capacity: 3}, agones.CounterAction{Action: "Increment", Amount: 1, Capacity: ptr(-1)}, agones.CountCap{Count: 2, Capacity: 3}, true},
		{"unknown action refused", agones.CountCap{Count: 1, Capacity: 3}, agones.CounterAction{Action: "Double", Amount: 1}, agones.CountCap{Count: 1, Capacity: 3}, true},
		{"negative amount refused", agones.CountCap{Count: 1, Capacity: 3}, agones.CounterAction{Action: "Increment", Amount: -1}, agones.CountCap{Count: 1, Capacity: 3}, true},
		{"no amount, nothing", agones.CountCap{Count: 1, Capacity: 3}, agones.CounterAction{Action: "Increment"}, agones.CountCap{Count: 1, Capacity: 3}, false},
	} {
		got, err := ApplyCounterAction(tt.in, tt.a)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: %+v, %v; want %+v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}
