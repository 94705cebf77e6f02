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

// checkWithin is check, and max at most widest: a skill window or a
// latency budget past what any two tickets can differ by widens nothing
// more, and a search out to it (the matcher's pool, bucket by bucket)
// would cost in proportion to it.
func (w Widening) checkWithin(field string, widest int) error {
	if err := w.check(field); err != nil {
		return err
	}
	if w.Max > widest {
		return fmt.Errorf("%s max %d: at most %d, which already reaches every ticket", field, w.Max, widest)
	}
	return nil
}
