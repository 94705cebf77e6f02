package main

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// runStats gathers what the arrivals came to, from many goroutines.
type runStats struct {
	sent, assigned atomic.Int64
	// began is when the arrivals began; lastAssigned the latest
	// assignment (UnixNano; 0: none yet).
	began        time.Time
	lastAssigned atomic.Int64

	histMu     sync.Mutex
	hist       *hdrhistogram.Histogram   // POST to assignment
	acceptHist *hdrhistogram.Histogram   // POST to accepted
	refuseHist *hdrhistogram.Histogram   // POST to refused (refusedKind)
	windows    []*hdrhistogram.Histogram // by arrival window: POST to assignment
	refusals   []*hdrhistogram.Histogram // and POST to refused
	windowSent []int64
	interval   time.Duration

	errMu sync.Mutex
	errs  map[string]int64
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
}

func newRunStats(duration, interval time.Duration) *runStats {
	st := &runStats{hist: newHist(), acceptHist: newHist(), refuseHist: newHist(), interval: interval, errs: map[string]int64{}}
	if interval > 0 {
		k := int(math.Ceil(float64(duration) / float64(interval)))
		st.windows, st.refusals, st.windowSent = make([]*hdrhistogram.Histogram, k), make([]*hdrhistogram.Histogram, k), make([]int64, k)
		for j := range st.windows {
			st.windows[j], st.refusals[j] = newHist(), newHist()
		}
	}
	return st
}

// refusedKind is the error kind of a POST refused with 503: what
// overload control answers beyond capacity (and a full region, a drain,
// a frontend still starting).
const refusedKind = "post_503"

// record is one ticket's outcome: sent at t0, its POST answered at
// answered, in window w (-1: none).
func (st *runStats) record(w int, t0, answered time.Time, kind string) {
	if kind != "" {
		st.errMu.Lock()
		st.errs[kind]++
		st.errMu.Unlock()
		if kind == refusedKind && !answered.IsZero() {
			took := answered.Sub(t0).Microseconds()
			st.histMu.Lock()
			_ = st.refuseHist.RecordValue(took)
			if w >= 0 {
				_ = st.refusals[w].RecordValue(took)
			}
			st.histMu.Unlock()
		}
		return
	}
	st.assigned.Add(1)
	// One reading of the clock for the run and the window: read twice, a
	// window's latency could exceed the run's maximum.
	now := time.Now()
	latency := now.Sub(t0).Microseconds()
	storeMax(&st.lastAssigned, now.UnixNano())
	st.histMu.Lock()
	defer st.histMu.Unlock()
	_ = st.hist.RecordValue(latency)
	_ = st.acceptHist.RecordValue(answered.Sub(t0).Microseconds())
	if w >= 0 {
		_ = st.windows[w].RecordValue(latency)
	}
}

// storeMax stores v in a unless a holds more already.
func storeMax(a *atomic.Int64, v int64) {
	for last := a.Load(); v > last && !a.CompareAndSwap(last, v); last = a.Load() {
	}
}

func quantiles(h *hdrhistogram.Histogram) map[string]float64 {
	ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
	return map[string]float64{"p50": ms(50), "p90": ms(90), "p99": ms(99), "p99.9": ms(99.9), "max": float64(h.Max()) / 1000}
}

// result is the run's summary once every ticket has its outcome.
func (st *runStats) result(rate float64, arrivals, interval time.Duration) runResult {
	res := runResult{Rate: rate, Seconds: arrivals.Seconds(), Sent: st.sent.Load(), Assigned: st.assigned.Load(), Errors: st.errs, FirstSentAt: st.began.UTC()}
	if last := st.lastAssigned.Load(); last > 0 {
		res.LastAssignedAt = time.Unix(0, last).UTC()
	}
	res.Throughput = float64(res.Assigned) / arrivals.Seconds()
	res.Latency, res.Accepted = quantiles(st.hist), quantiles(st.acceptHist)
	if res.Refused = st.refuseHist.TotalCount(); res.Refused > 0 {
		res.RefusedLatency = quantiles(st.refuseHist)
	}
	for j, h := range st.windows {
		w := window{FromSeconds: (time.Duration(j) * interval).Seconds(), Sent: st.windowSent[j], Assigned: h.TotalCount(), Latency: quantiles(h)}
		if w.Refused = st.refusals[j].TotalCount(); w.Refused > 0 {
			w.RefusedLatency = quantiles(st.refusals[j])
		}
		res.Windows = append(res.Windows, w)
	}
	return res
}
