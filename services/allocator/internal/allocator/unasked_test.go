package allocator

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ended is p's handler for a delivery whose every try ends with this
// call, as the router's retries end inside leaveUnasked.
func (p *partitioned) ended() message.HandlerFunc {
	return p.fail.giveUp(p.recs.leaveUnasked(func(msg *message.Message) ([]*message.Message, error) {
		return nil, p.as.handle(msg)
	}))
}

// A reservation whose create was stored and its answer lost, by a
// delivery whose tries all ended without asking the backend, is taken
// over by the match's redelivery in the same allocator at once. Before,
// the redelivery found it held and waited for it to go stale (30 s):
// chaos S51's 4 late tickets.
func TestAReservationLeftByAnEndedDeliveryIsTakenOver(t *testing.T) {
	t.Parallel()
	p := newPartitioned(t, false)
	p.recs.unasked, p.recs.reconciled = &unasked{}, newMetrics().reconciled
	p.backend.free.Store(1)
	p.kv.lostCreates.Store(1)
	m := pair("m-left")
	if _, err := p.ended()(nthDelivery(m, 1)); err == nil {
		t.Fatal("a match whose reservation went unanswered was acked")
	}
	if err := p.deliver(m, 2); err != nil {
		t.Fatalf("the redelivery: %v", err)
	}
	p.assignedOnce(t)
	p.reconciledOnce(t, "unasked_taken")
}

// A reservation is not taken over at once when its delivery asked the
// backend (its server may be coming: the kube backend's informers), nor
// in another allocator, which cannot know the delivery ended: both wait
// for it to go stale, as before.
func TestAReservationLeftAfterAskingIsNotTakenOver(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(p *partitioned)
	}{
		{"asked", func(p *partitioned) {
			p.recs.unrecorded = nil // the server given is not remembered
			p.kv.updates.Store(5)   // every write of the server into the record
		}},
		{"elsewhere", func(p *partitioned) {
			p.kv.lostCreates.Store(1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPartitioned(t, false)
			p.recs.unasked = &unasked{}
			p.backend.free.Store(1)
			tc.setup(p)
			m := pair("m-" + tc.name)
			if _, err := p.ended()(nthDelivery(m, 1)); err == nil {
				t.Fatal("a match whose record was not reconciled was acked")
			}
			if tc.name == "elsewhere" { // another allocator
				p.recs.unasked = &unasked{}
			}
			if err := p.deliver(m, 2); !errors.Is(err, errInProgress) {
				t.Fatalf("the redelivery: %v, want %v", err, errInProgress)
			}
		})
	}
}
