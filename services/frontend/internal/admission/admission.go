package admission

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config: what New fills in for a zero field (Target aside:
// zero is off), and the defaults of the frontend's flags.
const (
	// DefaultTarget is far above a healthy creation (a few JetStream
	// round trips: milliseconds) and far below a collapsing one
	// (seconds), so it separates the two on any machine; what it adds
	// to an accepted ticket is small beside its wait for a match.
	DefaultTarget = 100 * time.Millisecond
	// DefaultMin keeps a frontend whose creations are slow at any load
	// (a far JetStream cluster) serving at least Min/latency a second.
	DefaultMin = 16
	// DefaultMax bounds the burst a fresh frontend admits before it has
	// measured anything; 10,000 creations a second at 10 ms each is 100
	// in flight, so it is no bound on a healthy one.
	DefaultMax = 1000
	// DefaultInitial is where the limit starts (within Min and Max): low
	// enough that a frontend started into a flood does not make it
	// worse, and it grows to what the traffic needs within a second.
	DefaultInitial = 64
	// DefaultWindow is how often the limit moves: long enough to average
	// a few creations, short enough to follow a flood within a second.
	DefaultWindow = 100 * time.Millisecond
)

// minSamples is the fewest creations a window averages before the limit
// moves: one slow creation among few says little.
const minSamples = 8

// Retry-After of an overload refusal (RetryAfter). Clients that ask again
// (the TypeScript client does, up to 8 times) bring every refused creation
// back after it, so a fixed one (1-3 s, before) multiplied the requests
// by the overload: at three times capacity 135,000 arrivals became
// 438,000 POSTs (BENCHMARKS.md, thirty-sixth round). It grows instead
// with the refusals per admission of the last rateWindow: the seconds the
// frontend needs, at the rate it admits, to take the clients it refused
// in one. Their return is spread over that many seconds and twice as many
// again (the API's jitter), so what comes back is what it can take, or
// refuse cheaply.
const (
	rateWindow = time.Second
	// MaxRetryAfter bounds it (15 s with the jitter), so that a client's
	// attempts still fit its patience. At 20 (60 s with the jitter), in
	// the cuts of a chaos run, where creations stop ending and every
	// request is refused, it doubles to the cap in five seconds: keyed
	// clients gave up unserved (chaos S75b: 49 of 15,000, where 1-3 s
	// left 0-6, and 5 left 1). Three times capacity refuses two a
	// second per admission before clients ask again.
	MaxRetryAfter = 5
)

// RepeatSlotDivisor sets the repeat slots: repeats served past the limit
// take at most the limit over it at once (AcquireRepeat), and at least
// one. Few, as a repeat creates no ticket but costs its token's check,
// a read of its record (and, for a ticket still waiting, its publish
// again), and a client may say it repeats when it does not.
const RepeatSlotDivisor = 8

// Config of a Limiter.
type Config struct {
	// Target is the mean latency of a creation above which the limit is
	// cut. 0 (or less) turns overload control off: every creation is
	// admitted, and only counted.
	Target time.Duration
	// Min and Max bound the limit; Initial is where it starts.
	Min, Max, Initial int
	// Window is how often the limit moves (with at least minSamples
	// creations measured).
	Window time.Duration
	// Now is the clock; nil means time.Now (tests turn their own).
	Now func() time.Time
	// Log, if set, hears each move of the overload refusal's
	// Retry-After (RetryAfter), with the window's refusals and
	// admissions that moved it: the gauge is sampled, and a chaos run or
	// an incident wants what each frontend told and when. At most one
	// line a rateWindow, logged with no lock held.
	Log *slog.Logger
}

// On reports whether overload control is on.
func (c Config) On() bool { return c.Target > 0 }

func (c *Config) setDefaults() {
	if c.Min <= 0 {
		c.Min = DefaultMin
	}
	if c.Max <= 0 {
		c.Max = max(DefaultMax, c.Min)
	}
	if c.Initial <= 0 {
		c.Initial = DefaultInitial
	}
	c.Initial = min(max(c.Initial, c.Min), c.Max)
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every impossible setting at once. Zero fields are
// defaults, not errors.
func (c Config) Validate() error {
	var errs []error
	if c.Min < 0 {
		errs = append(errs, fmt.Errorf("min %d: want 1 or more (0: the default)", c.Min))
	}
	floor := c.Min
	if floor <= 0 {
		floor = DefaultMin
	}
	if c.Max < 0 || c.Max > 0 && c.Max < floor {
		errs = append(errs, fmt.Errorf("max %d: want at least the min, %d (0: the default)", c.Max, floor))
	}
	return errors.Join(errs...)
}

// Limiter admits ticket creations up to its limit and moves the limit
// with their latency (see the package doc). Safe for concurrent use.
type Limiter struct {
	cfg Config

	mu       sync.Mutex
	limit    float64
	inFlight int
	// The window being measured: when it started, the creations measured
	// in it and their summed latency, and the most in flight during it.
	start time.Time
	n     int
	sum   time.Duration
	peak  int
	// Repeats served past the limit now (AcquireRepeat).
	repeats int
	// The refusals and admissions since rateStart, and the Retry-After
	// (seconds) the last rateWindow's ratio set (RetryAfter).
	rateStart         time.Time
	refused, admitted int
	retryAfter        int
}

var _ prometheus.Collector = (*Limiter)(nil)

// New returns a Limiter at cfg.Initial.
func New(cfg Config) *Limiter {
	cfg.setDefaults()
	now := cfg.Now()
	return &Limiter{cfg: cfg, limit: float64(cfg.Initial), start: now, rateStart: now, retryAfter: 1}
}

// Slot is one admitted creation, or a repeat served past the limit
// (AcquireRepeat). Its Done must be called exactly once.
type Slot struct {
	l      *Limiter
	start  time.Time
	repeat bool
	// window is the rate window a repeat slot was taken in (Answered).
	window time.Time
}

// Full reports whether a creation would be refused now: a check that
// takes nothing, for refusing a request before any work is spent on it
// (its token, its body), and counts it refused if so (RetryAfter).
// Acquire decides the others.
func (l *Limiter) Full() bool {
	now := l.cfg.Now()
	var m move
	defer func() { l.logMove(m) }() // runs after the unlock
	l.mu.Lock()
	defer l.mu.Unlock()
	m = l.count(now)
	if !l.full() {
		return false
	}
	l.refused++
	return true
}

func (l *Limiter) full() bool {
	return l.cfg.On() && l.inFlight >= int(l.limit)
}

// Acquire admits a creation, or refuses it (ok false, nothing taken) when
// the creations in flight are at the limit. It never waits.
func (l *Limiter) Acquire() (s Slot, ok bool) {
	now := l.cfg.Now()
	var m move
	defer func() { l.logMove(m) }() // runs after the unlock
	l.mu.Lock()
	defer l.mu.Unlock()
	m = l.count(now)
	if l.full() {
		l.refused++
		return Slot{}, false
	}
	l.admitted++
	l.inFlight++
	l.peak = max(l.peak, l.inFlight)
	return Slot{l: l, start: now}, true
}

// AcquireRepeat serves, past the limit, a creation its client says
// repeats one whose ticket may exist (ticketapi.HeaderRepeat): it is
// answered from that ticket and makes none, or refused for overload if
// there is none. Up to the limit over RepeatSlotDivisor at once (at least
// one); ok false: refused, nothing taken. It is not an admission: the
// refusal Full counted for it stands until it is answered (Answered; a
// repeat of no ticket is refused after all), and its Slot's Done
// measures nothing.
func (l *Limiter) AcquireRepeat() (s Slot, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.On() && l.repeats >= max(int(l.limit)/RepeatSlotDivisor, 1) {
		return Slot{}, false
	}
	l.repeats++
	return Slot{l: l, repeat: true, window: l.rateStart}, true
}

// Answered takes back the refusal counted for repeat slot s (Full's, or
// Acquire's when the limit filled as its body came): it was answered
// from its ticket, and its client, told where its ticket is, will not
// come back for the wait the refusals set (count). Counted, it lengthened
// the wait of every refused player as a refusal does. Taken back from
// the window the slot was taken in, while it is open; a window closed
// since has set its wait. (Should one have closed between the refusal
// and the slot, the refusal taken back is the next window's: one in a
// second's count.)
func (s Slot) Answered() {
	if !s.repeat || s.l == nil {
		return
	}
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if s.l.rateStart.Equal(s.window) && s.l.refused > 0 {
		s.l.refused--
	}
}

// Repeat reports whether s is a repeat slot (AcquireRepeat).
func (s Slot) Repeat() bool { return s.repeat }

// Done ends the creation. measured says whether its latency speaks for
// the broker's: true for one that reached it (queued, or failed there),
// false for one refused before (invalid, forbidden, a full region), whose
// instant answer would make the latency look low.
func (s Slot) Done(measured bool) {
	if s.l == nil {
		return
	}
	if s.repeat {
		s.l.mu.Lock()
		s.l.repeats--
		s.l.mu.Unlock()
		return
	}
	now := s.l.cfg.Now()
	s.l.done(now, now.Sub(s.start), measured)
}

func (l *Limiter) done(now time.Time, latency time.Duration, measured bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if !measured || !l.cfg.On() {
		return
	}
	l.n++
	l.sum += latency
	if l.n < minSamples || now.Sub(l.start) < l.cfg.Window {
		return
	}
	l.adjust(l.sum / time.Duration(l.n))
	l.start, l.n, l.sum, l.peak = now, 0, 0, l.inFlight
}

// adjust moves the limit at the end of a window whose creations took
// mean on average (the rule is the package doc's).
func (l *Limiter) adjust(mean time.Duration) {
	switch {
	case mean > l.cfg.Target:
		cut := min(max(float64(l.cfg.Target)/float64(mean), 0.5), 0.9)
		l.limit = max(l.limit*cut, float64(l.cfg.Min))
	case 2*l.peak >= int(l.limit):
		l.limit = min(l.limit+math.Sqrt(l.limit), float64(l.cfg.Max))
	}
}

// Limit is how many creations may be in flight now (0 when off).
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.cfg.On() {
		return 0
	}
	return int(l.limit)
}

// InFlight is how many creations are in flight now.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight
}

var (
	limitDesc = prometheus.NewDesc("quickmatch_frontend_creation_limit",
		"Ticket creations the frontend lets run at once now (overload control; 0: off).", nil, nil)
	inFlightDesc = prometheus.NewDesc("quickmatch_frontend_creations_in_flight",
		"Ticket creations running now (waiting for JetStream).", nil, nil)
	retryAfterDesc = prometheus.NewDesc("quickmatch_frontend_overload_retry_after_seconds",
		"The Retry-After an overload refusal is given now, before its jitter (up to twice as much again): a second for each refusal per admission in the last second, 1 to 5, at most doubling each second.", nil, nil)
)

// Describe is prometheus.Collector's.
func (l *Limiter) Describe(ch chan<- *prometheus.Desc) {
	ch <- limitDesc
	ch <- inFlightDesc
	ch <- retryAfterDesc
}

// Collect is prometheus.Collector's: the limit, the creations in
// flight and the Retry-After, read when scraped.
func (l *Limiter) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(l.Limit()))
	ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(l.InFlight()))
	ch <- prometheus.MustNewConstMetric(retryAfterDesc, prometheus.GaugeValue, float64(l.RetryAfter()))
}
