package sdktest

import (
	"errors"
	"fmt"
	"slices"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
)

// What an allocation's counter and list actions do to the chosen
// GameServer, from Agones' own code (pkg/apis/allocation/v1
// CounterAction.CounterActions and ListAction.ListActions, over
// pkg/apis/agones/v1 GameServer.UpdateCounterCapacity, UpdateCount,
// UpdateListCapacity, AppendListValues, DeleteListValues). The fake's
// Allocate and the allocation double
// (services/allocator/internal/kube/kubetest) both go through these, so
// the two cannot disagree. An action that cannot run returns an error
// and the rest still applies: Agones records the errors as a Warning
// event and the allocation stands.

// ListMaxCapacity is Agones' bound on a list's capacity
// (ListMaxCapacity, the default of the chart's lists maxItems).
const ListMaxCapacity = 1000

// ApplyListAction is ListAction.ListActions on one list, in Agones'
// order: capacity first (outside 0..ListMaxCapacity refused; values
// beyond it cut), then addValues (AppendValues), then deleteValues
// (values not there ignored). Deleting last means a value both added and
// deleted is gone, and a delete frees no room for the same action's adds:
// those were already cut at the capacity. The values are never shared
// with l's.
func ApplyListAction(l agones.ListState, a agones.ListAction) (agones.ListState, error) {
	var err error
	l.Values = slices.Clone(l.Values)
	if a.Capacity != nil {
		if c := *a.Capacity; c < 0 || c > ListMaxCapacity {
			err = fmt.Errorf("capacity %d outside 0..%d", c, ListMaxCapacity)
		} else {
			l.Capacity = c
			l.Values = AppendValues(l.Values, nil, c)
		}
	}
	if len(a.AddValues) > 0 {
		l.Values = AppendValues(l.Values, a.AddValues, l.Capacity)
	}
	if len(a.DeleteValues) > 0 {
		l.Values = slices.DeleteFunc(l.Values, func(v string) bool { return slices.Contains(a.DeleteValues, v) })
	}
	return l, err
}

// AppendValues is the list after an allocation's addValues: the values
// not already there (nor earlier in add) appended in order, then the
// list cut at capacity (GameServer.AppendListValues: MergeRemoveDuplicates,
// truncateList). Agones reports nothing when it cuts: only a selector
// asking for list room (minAvailable) keeps values from being lost.
func AppendValues(values, add []string, capacity int64) []string {
	out := make([]string, 0, len(values)+len(add))
	seen := make(map[string]bool, len(values)+len(add))
	for _, v := range append(append([]string{}, values...), add...) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	if int64(len(out)) > capacity {
		out = out[:max(capacity, 0)]
	}
	return out
}

// ApplyCounterAction is CounterAction.CounterActions on one counter:
// capacity first (negative refused; a count above it cut to it), then
// Increment or Decrement by the amount, the count clamped to
// [0, capacity] rather than refused. An action without an amount (or an
// amount of 0, which our wire type does not send) changes nothing.
func ApplyCounterAction(c agones.CountCap, a agones.CounterAction) (agones.CountCap, error) {
	var errs error
	if a.Capacity != nil {
		if *a.Capacity < 0 {
			errs = fmt.Errorf("capacity %d below 0", *a.Capacity)
		} else {
			c.Capacity = *a.Capacity
			c.Count = min(c.Count, c.Capacity)
		}
	}
	if a.Action == "" || a.Amount == 0 {
		return c, errs
	}
	switch {
	case a.Action != "Increment" && a.Action != "Decrement":
		errs = errors.Join(errs, fmt.Errorf("action %q is not Increment or Decrement", a.Action))
	case a.Amount < 0:
		errs = errors.Join(errs, fmt.Errorf("amount %d below 0", a.Amount))
	case a.Action == "Increment":
		c.Count = min(max(c.Count+a.Amount, 0), c.Capacity)
	default:
		c.Count = min(max(c.Count-a.Amount, 0), c.Capacity)
	}
	return c, errs
}
