package events_test

import (
	"testing"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

func TestStatusRank(t *testing.T) {
	t.Parallel()
	for s, want := range map[events.Status]int{
		events.StatusQueued: 1, events.StatusMatched: 2,
		events.StatusAssigned: 3, events.StatusCancelled: 3, events.StatusExpired: 3, events.StatusFailed: 3,
		"nonsense": 0,
	} {
		if got := s.Rank(); got != want {
			t.Errorf("%q.Rank() = %d, want %d", s, got, want)
		}
	}
}

func TestStatusInMatch(t *testing.T) {
	t.Parallel()
	for s, want := range map[events.Status]bool{
		events.StatusQueued: false, events.StatusMatched: true, events.StatusAssigned: true,
		events.StatusCancelled: false, events.StatusExpired: false, events.StatusFailed: false, "nonsense": false,
	} {
		if got := s.InMatch(); got != want {
			t.Errorf("%q.InMatch() = %v, want %v", s, got, want)
		}
	}
}

func TestClaimedResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		owner  string
		status events.Status
		match  string
		reason string
	}{
		{events.OwnerCancelled, events.StatusCancelled, "", "cancelled"},
		{events.OwnerSuperseded, events.StatusCancelled, "", "superseded by a newer ticket of the player"},
		{events.OwnerExpired, events.StatusExpired, "", "no match within the maximum wait"},
		{events.OwnerFailed, events.StatusFailed, "", "failed"},
		{events.MatchOwner("m1"), events.StatusMatched, "m1", ""},
	}
	for _, tt := range tests {
		r := events.ClaimedResult("t1", "p1", tt.owner)
		if r.TicketID != "t1" || r.PlayerID != "p1" || r.Status != tt.status || r.MatchID != tt.match || r.Reason != tt.reason {
			t.Errorf("ClaimedResult(%q) = %+v, want status %s match %q reason %q", tt.owner, r, tt.status, tt.match, tt.reason)
		}
		if got := events.OwnerStatus(tt.owner); got != tt.status {
			t.Errorf("OwnerStatus(%q) = %s, want %s", tt.owner, got, tt.status)
		}
	}
}
