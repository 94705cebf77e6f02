package tickets

import (
	"testing"
	"time"
)

// A ticket is kept at least lateWritesFor and at most twice that.
func TestLateWritesAreKeptForAWhile(t *testing.T) {
	var l lateWrites
	t0 := time.Now()
	l.add("t1", t0)
	for _, tt := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {lateWritesFor - time.Second, true}, {lateWritesFor + time.Second, true}, {2*lateWritesFor + time.Second, false}} {
		if got := l.has("t1", t0.Add(tt.after)); got != tt.want {
			t.Fatalf("kept after %s: %v, want %v", tt.after, got, tt.want)
		}
	}
	if l.has("t2", t0) {
		t.Fatal("a ticket never added is kept")
	}
}
