package main

import (
	"context"
	"sync"
	"time"
)

// arrivalAt is when the i-th ticket arrives after the start, at rate per
// second in groups of burst: the group of ticket i at i/burst × burst/rate
// seconds, so the mean rate is rate whatever the burst.
func arrivalAt(rate float64, burst int) func(i int) time.Duration {
	return func(i int) time.Duration {
		return time.Duration(float64(i/burst*burst) / rate * float64(time.Second))
	}
}

// arrive sends n tickets (rate × duration), the i-th at at(i) after the
// start, for the player players gives it (named by player), to the region and
// with the skill pick gives it, each in its own goroutine so that a slow one never holds
// back the next; it returns how long the arrivals took, once every
// ticket has its outcome.
func (st *runStats) arrive(ctx context.Context, n int, at func(i int) time.Duration, timeout time.Duration, ticket ticketFunc, players *cast, player func(i int) string, pick func(i int) (region string, skill int)) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	st.began = start
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		due := start.Add(at(i))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		st.sent.Add(1)
		w := -1
		if st.windows != nil {
			w = min(int(due.Sub(start)/st.interval), len(st.windows)-1)
			st.windowSent[w]++
		}
		p := players.take()
		go func() {
			defer wg.Done()
			defer players.give(p)
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			t0 := time.Now()
			region, skill := pick(i)
			answered, kind := ticket(cctx, i, p, player(p), region, skill)
			st.record(w, t0, answered, kind)
		}()
	}
	arrivals := time.Since(start)
	wg.Wait()
	return arrivals
}
