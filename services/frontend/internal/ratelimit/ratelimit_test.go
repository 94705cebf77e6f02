package ratelimit

import (
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	t.Parallel()
	l := New(2, 3)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th request: ok=%v wait=%s", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another client was slowed by the first")
	}
	if ok, _ := l.Allow("a", now.Add(600*time.Millisecond)); !ok {
		t.Fatal("a refill did not come")
	}
	if ok, _ := New(0, 0).Allow("a", now); !ok {
		t.Fatal("rate 0 must mean no limit")
	}
}
