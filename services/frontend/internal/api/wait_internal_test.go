package api

import "testing"

// A client is sent a new expected wait when it became known or moved by
// more than a quarter of the one it has, never when it became unknown.
func TestWaitMoved(t *testing.T) {
	t.Parallel()
	tests := []struct {
		had, now int64
		want     bool
	}{
		{0, 0, false}, {0, 1, true}, {4000, 0, false},
		{4000, 4000, false}, {4000, 5000, false}, {4000, 3000, false},
		{4000, 5001, true}, {4000, 2999, true}, {4000, 60000, true}, {60000, 1, true},
	}
	for _, tt := range tests {
		if got := waitMoved(tt.had, tt.now); got != tt.want {
			t.Errorf("waitMoved(%d, %d) = %v, want %v", tt.had, tt.now, got, tt.want)
		}
	}
}
