package admission_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/admission"
)

// capacity is what the model broker answers a second.
const capacity = 2000

// broker is a model of what a creation waits for: one queue served in
// order at capacity creations a second, plus a round trip that takes no
// capacity. A creation's latency is its round trip, its wait in the
// queue and its own service.
type broker struct {
	free time.Time // when the queue is next empty
}

// answers is when a creation sent at now is answered.
func (b *broker) answers(now time.Time) time.Time {
	if b.free.Before(now) {
		b.free = now
	}
	b.free = b.free.Add(time.Second / capacity)
	return b.free.Add(2 * time.Millisecond)
}

// run is what a simulated run saw of the creations sent after its
// warm-up.
type run struct {
	sent, refused, answered int
	goodput                 float64 // answered a second
	mean, worst             time.Duration
}

// arrivals gives the gap before the next creation sent at elapsed
// into the run.
type arrivals func(elapsed time.Duration) time.Duration

// simulate offers the model broker creations through l for 60 s of the
// hand-turned clock, and measures the last 50.
func simulate(l *admission.Limiter, c *clock, next arrivals) run {
	const length, warmUp = 60 * time.Second, 10 * time.Second
	var b broker
	// Creations end in the order they were sent (one queue, one round
	// trip), so a slice serves as the queue of completions.
	type pending struct {
		slot          admission.Slot
		sent, answers time.Time
	}
	var inFlight []pending
	var res run
	var sum time.Duration
	start := c.now()
	for now := start; now.Sub(start) < length; now = now.Add(next(now.Sub(start))) {
		for len(inFlight) > 0 && !inFlight[0].answers.After(now) {
			p := inFlight[0]
			inFlight = inFlight[1:]
			c.t = p.answers
			p.slot.Done(true)
			if lat := p.answers.Sub(p.sent); p.sent.Sub(start) >= warmUp {
				res.answered++
				sum += lat
				res.worst = max(res.worst, lat)
			}
		}
		c.t = now
		counted := now.Sub(start) >= warmUp
		if counted {
			res.sent++
		}
		s, ok := l.Acquire()
		if !ok {
			if counted {
				res.refused++
			}
			continue
		}
		inFlight = append(inFlight, pending{slot: s, sent: now, answers: b.answers(now)})
	}
	if res.answered > 0 {
		res.mean = sum / time.Duration(res.answered)
	}
	res.goodput = float64(res.answered) / (length - warmUp).Seconds()
	return res
}

// even offers load times the capacity, evenly spaced.
func even(load float64) arrivals {
	gap := time.Duration(float64(time.Second) / (load * capacity))
	return func(time.Duration) time.Duration { return gap }
}

// poisson offers load times the capacity at random (a seeded source:
// every run is the same), after a tenth of it until from: the measure
// starts at the step (the warm-up ends at 10 s).
func poisson(load float64, from time.Duration) arrivals {
	r := rand.New(rand.NewPCG(1, 2))
	return func(elapsed time.Duration) time.Duration {
		rate := load * capacity
		if elapsed < from {
			rate = 0.1 * capacity
		}
		return time.Duration(r.ExpFloat64() / rate * float64(time.Second))
	}
}

// Whatever is offered, the model broker behind the limiter answers at
// what it is offered up to its capacity (within 10%), nothing under its
// capacity is refused (bursts and a sudden step included), and the
// creations it takes keep a latency near the target; without the limiter
// the same overload queues without end.
func TestGoodputAndLatencyWhateverIsOffered(t *testing.T) {
	t.Parallel()
	target := admission.DefaultTarget
	tests := []struct {
		name string
		load float64
		next arrivals
	}{
		{"half, at random", 0.5, poisson(0.5, 0)},
		{"0.95, stepped up from 0.1", 0.95, poisson(0.95, 10*time.Second)},
		{"1.5, at random", 1.5, poisson(1.5, 0)},
		{"3, evenly", 3, even(3)},
		{"3, at random, stepped up from 0.1", 3, poisson(3, 10*time.Second)},
	}
	for _, tt := range tests {
		l, c := newLimiter(admission.Config{Target: target})
		got := simulate(l, c, tt.next)
		want := min(tt.load, 1) * capacity
		if got.goodput < 0.9*want || got.goodput > 1.01*capacity {
			t.Errorf("%s: goodput %.0f/s, want within 10%% of %.0f/s", tt.name, got.goodput, want)
		}
		if tt.load < 1 && got.refused > 0 {
			t.Errorf("%s: %d of %d refused under the capacity", tt.name, got.refused, got.sent)
		}
		if tt.load > 1 && got.refused == 0 {
			t.Errorf("%s: nothing refused over the capacity", tt.name)
		}
		if got.mean > target*3/2 || got.worst >= time.Second {
			t.Errorf("%s: latency of the creations taken: mean %s, worst %s; want the mean within 1.5 times the target %s", tt.name, got.mean, got.worst, target)
		}
		t.Logf("%s: %+v, limit at the end %d", tt.name, got, l.Limit())
	}

	off, c := newLimiter(admission.Config{})
	if got := simulate(off, c, even(3)); got.mean < 10*time.Second {
		t.Errorf("without the limiter the mean latency is %s: the model does not overload", got.mean)
	}
}
