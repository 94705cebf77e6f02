package matcher

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/services/matcher/internal/pool"
)

type metrics struct {
	tickets  *prometheus.CounterVec
	matches  *prometheus.CounterVec
	waiting  *prometheus.GaugeVec
	waitTime prometheus.Histogram
	spread   prometheus.Histogram
	shards   prometheus.Gauge
	// outbox is how many matches the outbox keeps unsent (outbox.go).
	outbox prometheus.Gauge
	// seals counts the sealed tickets taken in (admit.go, takenFirst):
	// trusted, old (delivered before, or stored more than sealFresh ago:
	// read) or unverified (read).
	seals *prometheus.CounterVec
	// unverifiedMatches counts the reads of carried matches whose seal
	// did not verify (recoverer.sealed).
	unverifiedMatches prometheus.Counter
	// strayReads counts the messages the stray sweep reads: its cost.
	strayReads prometheus.Counter
	// functionCalls and proposals count match function calls by outcome
	// and their proposals by verdict (function.go).
	functionCalls *prometheus.CounterVec
	proposals     *prometheus.CounterVec
	// backfills counts backfill requests by what became of them
	// (backfill.go): a fill that keeps failing, or a request held long,
	// shows as held without filled or expired.
	backfills *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		tickets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_matcher_tickets_total", Help: "Tickets by what happened to them.",
		}, []string{"outcome"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quickmatch_matcher_matches_total", Help: "Matches formed by mode.",
		}, []string{"mode"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quickmatch_matcher_pool_tickets", Help: "Tickets waiting in the pools this worker owns.",
		}, []string{"shard", "mode"}),
		waitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quickmatch_matcher_wait_seconds", Help: "Wait from ticket creation to match.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}),
		spread: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quickmatch_matcher_skill_spread", Help: "Highest minus lowest skill in a formed match.",
			Buckets: []float64{0, 25, 50, 100, 200, 400, 800, 1600},
		}),
		shards: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quickmatch_matcher_owned_shards", Help: "Shards this worker owns.",
		}),
		outbox: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "quickmatch_matcher_outbox_matches",
			Help: "Matches decided published that this worker keeps to send after their shard was handed back; above 0 for long: NATS refuses their sends.",
		}),
		strayReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quickmatch_matcher_stray_sweep_reads_total", Help: "Messages of the tickets stream read looking for stray tickets.",
		}),
	}
	m.seals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quickmatch_matcher_seals_total",
		Help: "Sealed tickets taken in, by what the seal did: trusted (no read), old (delivered before, or stored more than 5 s ago: read), " +
			"unverified (not this matcher's keys: read; frontends and matchers with different seal keys show here).",
	}, []string{"result"})
	m.unverifiedMatches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "quickmatch_matcher_unverified_matches_total",
		Help: "Reads of a match a claim carried whose seal did not verify with this matcher's match seal keys (a recovery's, a copy check's): read from their record if they have one, " +
			"else undone, or left to a matcher that can verify them if decided published; never sent from here. " +
			"Above 0: matchers with different -match-seal-key-file, a matcher without one (an older release's), or claims written by another user.",
	})
	m.functionCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quickmatch_matcher_function_calls_total", Help: "Match function calls by outcome: answered, timeout, error, malformed, unavailable, failed.",
	}, []string{"outcome"})
	m.proposals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quickmatch_matcher_function_proposals_total", Help: "Match function proposals: accepted, or the reason one was dropped.",
	}, []string{"outcome"})
	m.backfills = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quickmatch_matcher_backfill_requests_total",
		Help: "Backfill requests by outcome: held (taken in by a shard's owner), filled, expired (past the mode's max wait), " +
			"replaced (by a later ask of its room), dropped (its mode gone or closed to backfill by a reload).",
	}, []string{"outcome"})
	reg.MustRegister(m.tickets, m.matches, m.waiting, m.waitTime, m.spread, m.shards, m.outbox, m.seals, m.unverifiedMatches, m.strayReads, m.functionCalls, m.proposals, m.backfills)
	return m
}

// formed counts a match of mode sent with its tickets all: each ticket's
// wait to now and the match's skill spread, which it returns (for the
// match's log line). A commit and the outbox count a match they send
// alike; before, the outbox's went into neither histogram.
func (m *metrics) formed(mode string, all []*pool.Entry, now time.Time) (spread int) {
	lo, hi := events.MaxSkill, events.MinSkill
	for _, e := range all {
		m.waitTime.Observe(now.Sub(time.Unix(0, e.Created)).Seconds())
		lo, hi = min(lo, e.Skill), max(hi, e.Skill)
	}
	m.spread.Observe(float64(hi - lo))
	m.tickets.WithLabelValues("matched").Add(float64(len(all)))
	m.matches.WithLabelValues(mode).Inc()
	return hi - lo
}
