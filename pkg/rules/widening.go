package rules

import (
	"fmt"
	"time"
)

// Widening is a limit that grows with waiting time: Initial at first, then
// PerSecond more for every second waited, up to Max.
type Widening struct {
	Initial   int `json:"initial"`
	PerSecond int `json:"per_second"`
	Max       int `json:"max"`
}

// At is the limit after waiting waited.
func (w Widening) At(waited time.Duration) int {
	// In floating point: Initial plus PerSecond times the wait can
	// overflow an int, and a wrapped sum would read as Initial.
	v := float64(w.Initial) + float64(w.PerSecond)*max(waited.Seconds(), 0)
	if v >= float64(w.Max) {
		return w.Max
	}
	return max(int(v), w.Initial)
}

func (w Widening) check(field string) error {
	if w.Initial < 0 || w.PerSecond < 0 || w.Max < w.Initial {
		return fmt.Errorf("%s %+v: want 0 <= initial <= max and per_second >= 0", field, w)
	}
	return nil
}

// within is w with its initial and max at most widest. A skill window or
// a latency budget past what any two tickets can differ by widens nothing
// more, so a rule set that says more (99999 for "no limit") means the
// same and keeps loading; and the matcher's search, bucket by bucket out
// to the widest window, no longer goes past the skill range (a max of 1e9
// made a search 114 ms; the largest int wrapped and the mode never
// matched).
func (w Widening) within(widest int) Widening {
	w.Initial, w.Max = min(w.Initial, widest), min(w.Max, widest)
	return w
}
