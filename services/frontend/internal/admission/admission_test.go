package admission_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/services/frontend/internal/admission"
)

// clock is turned by hand: no test here reads the wall clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newLimiter(cfg admission.Config) (*admission.Limiter, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Now = c.now
	return admission.New(cfg), c
}

// measuredPerWindow is the package's minSamples: the fewest creations a
// window averages before the limit moves.
const measuredPerWindow = 8

// round runs one window: inFlight creations admitted at once, all taking
// latency; the last measuredPerWindow of them are measured (the rest end
// unmeasured first, so the window closes exactly on the last one).
func round(t *testing.T, l *admission.Limiter, c *clock, inFlight int, latency time.Duration) {
	t.Helper()
	if inFlight < measuredPerWindow {
		t.Fatalf("a round needs %d in flight", measuredPerWindow)
	}
	slots := make([]admission.Slot, inFlight)
	for i := range slots {
		s, ok := l.Acquire()
		if !ok {
			t.Fatalf("creation %d of %d refused at limit %d", i+1, inFlight, l.Limit())
		}
		slots[i] = s
	}
	c.advance(latency)
	for i, s := range slots {
		s.Done(i >= inFlight-measuredPerWindow)
	}
}

func TestRefusesAtTheLimitAndAdmitsAfterDone(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 3, Max: 3})
	var slots []admission.Slot
	for range 3 {
		s, ok := l.Acquire()
		if !ok {
			t.Fatalf("refused under the limit: %d in flight", l.InFlight())
		}
		slots = append(slots, s)
	}
	if !l.Full() {
		t.Fatal("not full at the limit")
	}
	if _, ok := l.Acquire(); ok {
		t.Fatal("admitted past the limit")
	}
	if l.InFlight() != 3 || l.Limit() != 3 {
		t.Fatalf("in flight %d, limit %d; want 3, 3 (a refusal takes nothing)", l.InFlight(), l.Limit())
	}
	slots[0].Done(true)
	if l.Full() {
		t.Fatal("still full after a creation ended")
	}
	if _, ok := l.Acquire(); !ok {
		t.Fatal("refused after a creation ended")
	}
}

func TestOffAdmitsEverythingAndCounts(t *testing.T) {
	t.Parallel()
	l, c := newLimiter(admission.Config{})
	for range 5000 {
		if _, ok := l.Acquire(); !ok || l.Full() {
			t.Fatal("refused with overload control off")
		}
	}
	c.advance(time.Hour)
	if l.Limit() != 0 || l.InFlight() != 5000 {
		t.Fatalf("limit %d, in flight %d; want 0 (off), 5000", l.Limit(), l.InFlight())
	}
}

// Above the target the limit is cut by target/mean, by a tenth at least
// and a half at most, down to Min.
func TestCutByTargetOverMean(t *testing.T) {
	t.Parallel()
	l, c := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 10, Max: 1000, Initial: 100, Window: time.Millisecond})
	steps := []struct {
		latency time.Duration
		want    int
	}{
		{200 * time.Millisecond, 50}, // twice the target: halved
		{125 * time.Millisecond, 40}, // 0.8
		{101 * time.Millisecond, 36}, // 0.99: at least a tenth, 0.9
		{10 * time.Second, 18},       // 0.01: at most a half
		{10 * time.Second, 10},       // 9, under Min
		{10 * time.Second, 10},
	}
	for i, s := range steps {
		round(t, l, c, measuredPerWindow, s.latency)
		if got := l.Limit(); got != s.want {
			t.Fatalf("step %d (%s): limit %d, want %d", i, s.latency, got, s.want)
		}
	}
}

// At or under the target the limit grows by its square root, up to Max,
// but only when the window used half of it.
func TestGrowsOnlyWhenUsed(t *testing.T) {
	t.Parallel()
	l, c := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 10, Max: 100, Initial: 64, Window: time.Millisecond})
	round(t, l, c, 31, 10*time.Millisecond) // 31 of 64: not used enough
	if got := l.Limit(); got != 64 {
		t.Fatalf("limit %d after a window under half of it, want 64", got)
	}
	for i, want := range []int{72, 80, 89, 98, 100, 100} {
		round(t, l, c, (l.Limit()+1)/2, 100*time.Millisecond) // at the target is not above it
		if got := l.Limit(); got != want {
			t.Fatalf("growth %d: limit %d, want %d", i, got, want)
		}
	}
}

// A window closes only when it is Window long and has minSamples
// measured creations; unmeasured ones (refused before the broker, in
// microseconds) never move the limit, however many.
func TestWindowNeedsTimeAndMeasuredCreations(t *testing.T) {
	t.Parallel()
	l, c := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 10, Max: 1000, Initial: 64, Window: time.Second})
	for i := range 99 {
		round(t, l, c, 64, 10*time.Millisecond)
		if got := l.Limit(); got != 64 {
			t.Fatalf("limit %d after %d ms of a window of 1 s, want 64", got, 10*(i+1))
		}
	}
	round(t, l, c, 64, 10*time.Millisecond)
	if got := l.Limit(); got != 72 {
		t.Fatalf("limit %d when the window of 1 s closed, want 72", got)
	}

	l, c = newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 10, Max: 1000, Initial: 64, Window: time.Second})
	for range 1000 {
		s, _ := l.Acquire()
		s.Done(false)
	}
	c.advance(time.Hour)
	for range measuredPerWindow - 1 {
		s, _ := l.Acquire()
		c.advance(time.Minute) // slow, but too few to say so
		s.Done(true)
	}
	if got := l.Limit(); got != 64 {
		t.Fatalf("limit %d after %d measured creations, want 64 (too few to move it)", got, measuredPerWindow-1)
	}
	s, _ := l.Acquire()
	s.Done(true)
	if got := l.Limit(); got != 32 {
		t.Fatalf("limit %d after the %dth slow creation, want 32", got, measuredPerWindow)
	}
}

// The limit comes back when the latency falls: from Min, with the
// traffic at the limit, it is above where it started within ten windows.
func TestRecoversWhenLatencyFalls(t *testing.T) {
	t.Parallel()
	l, c := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 16, Max: 1000, Initial: 64, Window: 100 * time.Millisecond})
	for range 4 {
		round(t, l, c, measuredPerWindow, 2*time.Second)
	}
	if got := l.Limit(); got != 16 {
		t.Fatalf("limit %d after slow windows, want the floor 16", got)
	}
	prev := l.Limit()
	for i := range 10 {
		c.advance(100 * time.Millisecond) // a window long since the last one closed
		round(t, l, c, l.Limit(), 5*time.Millisecond)
		if got := l.Limit(); got <= prev {
			t.Fatalf("window %d: limit %d did not grow from %d", i, got, prev)
		}
		prev = l.Limit()
	}
	if prev < 64 {
		t.Fatalf("limit %d ten windows after the latency fell, want it back above 64", prev)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  admission.Config
		want string // "" means valid
	}{
		{"zero: defaults", admission.Config{}, ""},
		{"on", admission.Config{Target: time.Second, Min: 1, Max: 1}, ""},
		{"negative min", admission.Config{Min: -1}, "min"},
		{"max under min", admission.Config{Min: 10, Max: 5}, "max"},
		{"max under the default min", admission.Config{Max: admission.DefaultMin - 1}, "max"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// The limit and what is in flight are gauges, read when scraped.
func TestGauges(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(admission.Config{Target: time.Second, Min: 5, Max: 5})
	reg := prometheus.NewRegistry()
	reg.MustRegister(l)
	l.Acquire()
	l.Acquire()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	if got["quickmatch_frontend_creation_limit"] != 5 || got["quickmatch_frontend_creations_in_flight"] != 2 {
		t.Fatalf("gauges %v", got)
	}
}

// TestRetryAfterGrowsWithTheRefusalsPerAdmission: an overload refusal's
// Retry-After is 1 s until refusals outnumber admissions, then a second
// for each refusal per admission of the last second, at most doubling
// from one second to the next (refusals come before any token is
// verified: a flood must keep at it), up to MaxRetryAfter; refusals by
// Full count as Acquire's do; it falls back once the overload ends, or
// after a quiet spell. Clients that ask again come back after it, so a
// fixed one multiplied the requests by the overload (BENCHMARKS.md,
// thirty-sixth round).
func TestRetryAfterGrowsWithTheRefusalsPerAdmission(t *testing.T) {
	t.Parallel()
	l, c := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 2, Max: 2, Initial: 2})
	if got := l.RetryAfter(); got != 1 {
		t.Fatalf("Retry-After %d s at rest, want 1", got)
	}
	// second runs one second: admitted creations (each ended at once,
	// unmeasured; two more held to the end), and refused ones, half by
	// Full and half by Acquire.
	second := func(admitted, refused int) {
		t.Helper()
		for range admitted {
			s, ok := l.Acquire()
			if !ok {
				t.Fatal("refused with a slot free")
			}
			s.Done(false)
		}
		held := []admission.Slot{}
		for range 2 {
			s, _ := l.Acquire()
			held = append(held, s)
		}
		for i := range refused {
			if i%2 == 0 && !l.Full() || i%2 == 1 && func() bool { _, ok := l.Acquire(); return ok }() {
				t.Fatal("admitted at the limit")
			}
		}
		for _, s := range held {
			s.Done(false)
		}
		c.advance(time.Second)
	}
	for _, tc := range []struct {
		name                    string
		admitted, refused, want int
	}{
		{"fewer refusals than admissions", 100, 50, 1},
		{"three per admission, doubled from 1", 98, 300, 2},
		{"three per admission", 98, 300, 3},
		{"4.5 per admission, rounded up", 98, 450, 5},
		{"nothing but refusals, capped", 0, 1000, admission.MaxRetryAfter},
		{"nothing but refusals, capped still", 0, 1000, admission.MaxRetryAfter},
		{"the overload over", 100, 0, 1},
		{"three per admission again", 98, 300, 2},
	} {
		second(tc.admitted, tc.refused)
		if got := l.RetryAfter(); got != tc.want {
			t.Fatalf("%s (%d admitted, %d refused in a second): Retry-After %d s, want %d", tc.name, tc.admitted+2, tc.refused, got, tc.want)
		}
	}
	// A burst, then a quiet spell: the burst's window closes late and
	// says nothing of now.
	second(98, 300)
	c.advance(5 * time.Second)
	if got := l.RetryAfter(); got != 1 {
		t.Fatalf("Retry-After %d s after a quiet spell, want 1", got)
	}
}

// Repeats served past the limit take a share of it of their own (the
// limit over RepeatSlotDivisor, at least one): neither a creation's slot nor
// its measure, and given back by Done.
func TestRepeatsPastTheLimitTakeAShareOfTheirOwn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ limit, repeats int }{{3, 1}, {2 * admission.RepeatSlotDivisor, 2}} {
		l, _ := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: tc.limit, Max: tc.limit})
		for range tc.limit {
			if _, ok := l.Acquire(); !ok {
				t.Fatal("refused under the limit")
			}
		}
		var repeats []admission.Slot
		for range tc.repeats {
			s, ok := l.AcquireRepeat()
			if !ok {
				t.Fatalf("limit %d: repeat %d refused, want %d served", tc.limit, len(repeats)+1, tc.repeats)
			}
			repeats = append(repeats, s)
		}
		if _, ok := l.AcquireRepeat(); ok {
			t.Fatalf("limit %d: repeat %d served, want %d at most", tc.limit, tc.repeats+1, tc.repeats)
		}
		if l.InFlight() != tc.limit || !l.Full() {
			t.Fatalf("limit %d: %d creations in flight, full %v; repeats took creations' slots", tc.limit, l.InFlight(), l.Full())
		}
		repeats[0].Done(true)
		if l.InFlight() != tc.limit || l.Limit() != tc.limit {
			t.Fatalf("limit %d: a repeat's Done moved in flight %d, limit %d", tc.limit, l.InFlight(), l.Limit())
		}
		if _, ok := l.AcquireRepeat(); !ok {
			t.Fatalf("limit %d: repeat refused after one ended", tc.limit)
		}
	}
}

// A repeat answered from its ticket takes back the refusal counted for
// it: its client will not come back, so it does not lengthen the wait
// told to the refused (RetryAfter), as a repeat of no ticket does. Taken
// back from its own window only: one closed since has set its wait.
func TestAnsweredRepeatsTakeBackTheirRefusals(t *testing.T) {
	t.Parallel()
	// second runs one second at limit 2: both admitted and held, refused
	// refused by Full, of which answered are then repeats answered and
	// the rest repeats of no ticket.
	second := func(l *admission.Limiter, c *clock, refused, answered int) {
		t.Helper()
		held := []admission.Slot{}
		for range 2 {
			s, _ := l.Acquire()
			held = append(held, s)
		}
		for range refused {
			if !l.Full() {
				t.Fatal("admitted at the limit")
			}
		}
		for i := range refused {
			s, ok := l.AcquireRepeat()
			if !ok {
				t.Fatal("repeat refused with its slot free")
			}
			if i < answered {
				s.Answered()
			}
			s.Done(false)
		}
		for _, s := range held {
			s.Done(false)
		}
		c.advance(time.Second)
	}
	for _, tc := range []struct {
		name              string
		refused, answered int
		want              int
	}{
		{"every repeat of no ticket: four refusals per admission, doubled from 1", 8, 0, 2},
		{"six of eight answered: one refusal per admission", 8, 6, 1},
	} {
		l, c := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 2, Max: 2, Initial: 2})
		second(l, c, tc.refused, tc.answered)
		if got := l.RetryAfter(); got != tc.want {
			t.Errorf("%s: Retry-After %d s, want %d", tc.name, got, tc.want)
		}
	}

	// A slot taken in one window and answered in the next takes back
	// nothing of the next: 3 refusals per 2 admissions there stay 2 s.
	l, c := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 2, Max: 2, Initial: 2})
	second(l, c, 2, 0) // Retry-After 1: one refusal per admission
	held := []admission.Slot{}
	for range 2 {
		s, _ := l.Acquire()
		held = append(held, s)
	}
	if !l.Full() {
		t.Fatal("admitted at the limit")
	}
	late, _ := l.AcquireRepeat()
	c.advance(time.Second)
	l.RetryAfter() // the window closes
	for _, s := range held {
		s.Done(false)
	}
	for range 2 {
		s, _ := l.Acquire()
		defer s.Done(false)
	}
	for range 3 {
		l.Full()
	}
	late.Answered()
	late.Done(false)
	c.advance(time.Second)
	if got := l.RetryAfter(); got != 2 {
		t.Errorf("a repeat answered a window late: Retry-After %d s, want 2 (3 refusals per 2 admissions)", got)
	}
}

// Each move of the overload refusal's Retry-After is logged once, with
// the window that moved it: the gauge is sampled, and a chaos run reads what each
// frontend told from its log.
func TestTheWaitsMovesAreLogged(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	var l *admission.Limiter
	// The handler reads the limiter: a line logged with its lock held
	// would hang here (a stalled log would stall every admission).
	h := lockFree{Handler: slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime}), read: func() { l.Limit() }}
	l, c := newLimiter(admission.Config{Target: 100 * time.Millisecond, Min: 2, Max: 2, Initial: 2, Log: slog.New(h)})
	s1, _ := l.Acquire()
	s2, _ := l.Acquire()
	for range 6 {
		l.Full()
	}
	c.advance(time.Second)
	l.RetryAfter() // 3 per admission, doubled from 1: 2
	c.advance(time.Second)
	l.RetryAfter() // nothing in that window: 1 again
	c.advance(time.Second)
	l.RetryAfter() // unmoved: no line
	s1.Done(false)
	s2.Done(false)
	want := "level=INFO msg=\"overload Retry-After moved\" retry_after_seconds=2 was_seconds=1 refused=6 admitted=2 quiet=false\n" +
		"level=INFO msg=\"overload Retry-After moved\" retry_after_seconds=1 was_seconds=2 refused=0 admitted=0 quiet=false\n"
	if buf.String() != want {
		t.Fatalf("logged:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// lockFree is a handler that calls read before it handles a record.
type lockFree struct {
	slog.Handler
	read func()
}

func (h lockFree) Handle(ctx context.Context, r slog.Record) error {
	h.read()
	return h.Handler.Handle(ctx, r)
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
