package main

import (
	"strings"
	"testing"
	"time"
)

// lineWriter hands each write to the test, which so knows a line is out
// before it changes the run.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) { w <- string(p); return len(p), nil }

// TestProgress: a line at every tick, with the tick's elapsed time and
// the run so far, and none once done (the report follows).
func TestProgress(t *testing.T) {
	t.Parallel()
	st := newRunStats(time.Minute, 0)
	start := time.Unix(1000, 0)
	ticks, done, finished := make(chan time.Time), make(chan struct{}), make(chan struct{})
	out := make(lineWriter)
	go func() {
		defer close(finished)
		st.progress(out, start, ticks, done)
	}()

	st.sent.Add(3)
	st.record(-1, time.Now().Add(-40*time.Millisecond), time.Now(), "")
	st.record(-1, time.Now(), time.Time{}, "post_429")
	ticks <- start.Add(5 * time.Second)
	first := <-out
	st.sent.Add(2)
	ticks <- start.Add(10 * time.Second)
	second := <-out
	close(done)
	<-finished

	for i, c := range []struct{ got, want string }{
		{first, "load run      5s  sent 3  assigned 1  errors 1  p50 "},
		{second, "load run     10s  sent 5  assigned 1  errors 1  p50 "},
	} {
		if !strings.HasPrefix(c.got, c.want) || !strings.HasSuffix(c.got, " ms\n") {
			t.Errorf("line %d = %q, want %q… ms", i, c.got, c.want)
		}
	}
	if p50 := strings.TrimSuffix(strings.SplitAfter(first, "p50 ")[1], " ms\n"); p50 == "0.0" {
		t.Errorf("p50 %s: the assigned ticket's latency is missing", p50)
	}
}
