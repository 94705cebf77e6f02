package sdktest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/agones"
	"github.com/quickmatch-dev/quickmatch/pkg/agones/sdk"
)

// What Agones does to the GameServer a GameServerAllocation picks, from
// its own code: Validate refuses a bad request whole (ValidateAllocation),
// then the selectors (allocation/v1 GameServerSelector.Matches, with
// ApplyDefaults: a selector without a state asks for Ready), then
// applyAllocationToGameServer (labels, annotations, the last-allocated
// annotation, state Allocated, then each CounterAction and ListAction,
// actions.go). An action that cannot run (an unknown counter or list, a
// list capacity above 1000, an unknown counter action) is skipped and
// recorded as a Warning event; the allocation still succeeds, with the
// rest applied.

// ErrUnAllocated is the allocation outcome UnAllocated: no selector
// matches the fake's GameServer (its state, labels, counters or lists).
// Nothing changes.
var ErrUnAllocated = errors.New("UnAllocated: no selector matches the game server")

// LastAllocatedAnnotation is the annotation Agones sets to the time of
// every allocation.
const LastAllocatedAnnotation = "agones.dev/last-allocated"

// Allocate plays a GameServerAllocation with spec whose answer is the
// fake's GameServer, as Agones applies it: an error wrapping ErrInvalid
// if Agones' validation refuses spec (every selector checked, matched or
// not, before anything is matched), ErrUnAllocated if no selector matches
// (with no selectors, Agones' default one asks for a Ready server), and
// otherwise applies spec.Metadata, spec.Counters and spec.Lists whole and
// notifies watchers. Scheduling and Priorities choose among servers; with
// one server they change nothing.
func (s *Server) Allocate(spec agones.GameServerAllocationSpec) error {
	if errs := ValidateAllocation(spec); len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errs.ToAggregate())
	}
	sels := spec.Selectors
	if len(sels) == 0 {
		sels = []agones.GameServerSelector{{}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(sels, func(sel agones.GameServerSelector) bool { return matches(sel, s.gs) }) {
		return ErrUnAllocated
	}
	if m := spec.Metadata; m != nil {
		for k, v := range m.Labels {
			s.gs.ObjectMeta.Labels[k] = v
		}
		for k, v := range m.Annotations {
			s.gs.ObjectMeta.Annotations[k] = v
		}
	}
	ts, _ := time.Now().MarshalText()
	s.gs.ObjectMeta.Annotations[LastAllocatedAnnotation] = string(ts)
	s.gs.Status.State = "Allocated"
	for name, a := range spec.Counters {
		if err := s.counterAction(name, a); err != nil {
			s.warnings = append(s.warnings, "CounterActionError: "+err.Error())
		}
	}
	for name, a := range spec.Lists {
		if err := s.listAction(name, a); err != nil {
			s.warnings = append(s.warnings, "ListActionError: "+err.Error())
		}
	}
	s.notifyLocked()
	return nil
}

// counterAction runs ApplyCounterAction on the fake's counter name.
func (s *Server) counterAction(name string, a agones.CounterAction) error {
	c, ok := s.gs.Status.Counters[name]
	if !ok {
		return fmt.Errorf("counter %s not found in GameServer %s", name, s.gs.ObjectMeta.Name)
	}
	got, err := ApplyCounterAction(agones.CountCap{Count: int64(c.Count), Capacity: int64(c.Capacity)}, a)
	s.gs.Status.Counters[name] = sdk.CounterStatus{Count: sdk.Int64(got.Count), Capacity: sdk.Int64(got.Capacity)}
	if err != nil {
		return fmt.Errorf("counter %s: %w", name, err)
	}
	return nil
}

// listAction runs ApplyListAction on the fake's list name.
func (s *Server) listAction(name string, a agones.ListAction) error {
	l, ok := s.gs.Status.Lists[name]
	if !ok {
		return fmt.Errorf("list %s not found in GameServer %s", name, s.gs.ObjectMeta.Name)
	}
	got, err := ApplyListAction(agones.ListState{Capacity: int64(l.Capacity), Values: l.Values}, a)
	s.gs.Status.Lists[name] = sdk.ListStatus{Capacity: sdk.Int64(got.Capacity), Values: got.Values}
	if err != nil {
		return fmt.Errorf("list %s: %w", name, err)
	}
	return nil
}

// matches is GameServerSelector.Matches after ApplyDefaults, for a
// selector ValidateAllocation accepted: labels, then state (Ready when
// unset), then every counter and list bound (a maximum of 0 is no
// maximum; a counter or list the GameServer lacks never matches).
func matches(sel agones.GameServerSelector, gs sdk.GameServer) bool {
	if !LabelsMatch(sel, gs.ObjectMeta.Labels) || gs.Status.State != cmp.Or(sel.GameServerState, "Ready") {
		return false
	}
	for k, cs := range sel.Counters {
		c, ok := gs.Status.Counters[k]
		count, avail := int64(c.Count), int64(c.Capacity-c.Count)
		if !ok || avail < cs.MinAvailable || cs.MaxAvailable != 0 && avail > cs.MaxAvailable ||
			count < cs.MinCount || cs.MaxCount != 0 && count > cs.MaxCount {
			return false
		}
	}
	for k, ls := range sel.Lists {
		l, ok := gs.Status.Lists[k]
		avail := int64(l.Capacity) - int64(len(l.Values))
		if !ok || avail < ls.MinAvailable || ls.MaxAvailable != 0 && avail > ls.MaxAvailable ||
			ls.ContainsValue != "" && !slices.Contains(l.Values, ls.ContainsValue) {
			return false
		}
	}
	return true
}

// RoomAllocation is the allocation of one room as pkg/agones/room.go
// states it, for tests of game servers: a server already Allocated with
// room in both lists first, else a Ready one; the match id added to the
// rooms List, its players to the players List, the room written in the
// match's annotation.
func RoomAllocation(matchID string, r agones.Room) agones.GameServerAllocationSpec {
	fits := agones.RoomFits(r)
	meta, lists := agones.RoomActions(matchID, r)
	return agones.GameServerAllocationSpec{
		Selectors: []agones.GameServerSelector{
			{GameServerState: "Allocated", Lists: fits},
			{GameServerState: agones.StateReady, Lists: fits},
		},
		Metadata: meta,
		Lists:    lists,
	}
}
