package ratelimit

import (
	"fmt"
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

// A client is forgotten once its bucket is full again, which changes
// nothing for it (a new bucket starts full), so the limiter holds the
// clients of the last few seconds, not of every player ever seen.
func TestClientsAreForgottenOnceTheirBucketIsFull(t *testing.T) {
	t.Parallel()
	l := New(20, 40) // the frontend's defaults: full again in 2 s
	now := time.Unix(1000, 0)
	for i := range 1000 {
		if ok, _ := l.Allow(fmt.Sprint("player-", i), now); !ok {
			t.Fatalf("player %d refused", i)
		}
	}
	for range 40 {
		l.Allow("busy", now)
	}
	// Not full yet: nobody is forgotten, and the busy client is still
	// held to what it used.
	soon := now.Add(time.Second)
	if ok, _ := l.Allow("busy", soon); !ok {
		t.Fatal("busy refused after a second's refill")
	}
	if n := l.size(); n != 1001 {
		t.Fatalf("%d clients after 1 s, want 1001", n)
	}
	for range 19 {
		l.Allow("busy", soon)
	}
	if ok, _ := l.Allow("busy", soon); ok {
		t.Fatal("busy allowed past its refill: it was forgotten too early")
	}
	later := now.Add(2*time.Second + time.Millisecond)
	l.Allow("other", later)
	if n := l.size(); n != 2 {
		t.Fatalf("%d clients once the first ones' buckets are full again, want 2 (busy, other)", n)
	}
}

// A rate so low that a bucket takes longer than a Duration holds to fill
// keeps its clients (a day), rather than overflowing into forgetting them
// within a second, which would hand each a full bucket again.
func TestTinyRateKeepsItsClients(t *testing.T) {
	t.Parallel()
	l := New(1e-12, 1)
	now := time.Unix(1000, 0)
	if ok, _ := l.Allow("a", now); !ok {
		t.Fatal("first request refused")
	}
	l.Allow("b", now.Add(time.Minute)) // a sweep
	if ok, _ := l.Allow("a", now.Add(2*time.Minute)); ok {
		t.Fatal("a got a new bucket a minute later: it was forgotten")
	}
}
