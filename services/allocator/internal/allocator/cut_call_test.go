package allocator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
)

// hanging is a backend whose call ends with its context, or after after
// (then with err; deaf: after after, whatever its context); it says
// whether its context was cancelled.
type hanging struct {
	after     time.Duration
	err       error
	deaf      bool
	cancelled chan bool
}

func (h *hanging) Allocate(ctx context.Context, _ events.Match) (Server, error) {
	if h.deaf {
		time.Sleep(h.after)
		h.cancelled <- false
		return Server{}, h.err
	}
	select {
	case <-time.After(h.after):
		h.cancelled <- false
		return Server{Name: "gs", Address: "127.0.0.1", Port: 7000}, h.err
	case <-ctx.Done():
		h.cancelled <- ctx.Err() == context.Canceled
		return Server{}, ctx.Err()
	}
}

// TestABackendCallCutShortKeepsItsReservation: a backend call that
// outlives its bound (maxBackendCall) may have allocated, so the match's
// reservation is kept to go stale, and no other request asks the backend
// before then; a call that answers "no capacity" after its bound gives
// the reservation back, as any clear answer does.
func TestABackendCallCutShortKeepsItsReservation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, id string
		h        *hanging
		kept     bool
	}{
		{"cut short", "m-cut", &hanging{after: time.Hour}, true},
		{"a clear answer, late", "m-late", &hanging{after: 300 * time.Millisecond, err: ErrNoCapacity, deaf: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPartitioned(t, false)
			tc.h.cancelled = make(chan bool, 1)
			p.as.records.backend = tc.h
			p.as.records.bound = 100 * time.Millisecond
			m := pair(tc.id)
			if err := p.deliver(m, 1); tc.kept && err == nil {
				t.Fatal("a call cut short, and the match settled")
			}
			<-tc.h.cancelled
			e, err := p.kv.Get(t.Context(), m.MatchID)
			kept := err == nil && strings.Contains(string(e.Value()), `"pending"`)
			if kept != tc.kept {
				t.Fatalf("reservation kept: %t (%v), want %t", kept, err, tc.kept)
			}
			if tc.kept {
				if err := p.deliver(m, 2); !errors.Is(err, errInProgress) {
					t.Fatalf("the next delivery: %v, want it to wait for the reservation", err)
				}
			}
		})
	}
}

// TestAStoppingAllocatorLetsItsBackendCallFinish: a rollout stops an
// allocator (its deliveries' context ends) while a backend call is under
// way: the call is not cut short, so the server it gives is recorded,
// where the cut call left a reservation that held the match 30 s (review
// R18c).
func TestAStoppingAllocatorLetsItsBackendCallFinish(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	h := &hanging{after: 300 * time.Millisecond, cancelled: make(chan bool, 1)}
	p.as.records.backend = h
	m := pair("m-rollout")
	msg := nthDelivery(m, 1)
	ctx, stop := context.WithCancel(t.Context())
	msg.SetContext(ctx)
	time.AfterFunc(50*time.Millisecond, stop)
	_, _ = p.handler(msg)
	if <-h.cancelled {
		t.Fatal("the backend call was cut short by the stop")
	}
	if r, ok, err := p.as.records.placed(t.Context(), m.MatchID); err != nil || !ok || r.Server.Name != "gs" {
		t.Fatalf("record %+v, %t, %v: want the server recorded", r, ok, err)
	}
}
