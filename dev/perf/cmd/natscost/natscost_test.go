package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag/envflagtest"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestHelp: -h prints what natscost is (as its package comment says) and
// each flag's environment variable, and run returns flag.ErrHelp before
// starting anything.
func TestHelp(t *testing.T) { envflagtest.CheckHelp(t, run, about, "RATES") }

// TestPacedSendsInBursts: paced sends rate × duration messages, burst at
// a time, and waits for them.
func TestPacedSendsInBursts(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	waited := false
	k := &kind{async: true,
		send: func(context.Context, int) error {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
			return nil
		},
		wait: func(context.Context) error { waited = true; return nil },
	}
	n, err := paced(context.Background(), k, 1000, 10, 200*time.Millisecond)
	if err != nil || n != 200 || len(at) != 200 || !waited {
		t.Fatalf("paced: %d sent (%d seen), err %v, waited %v; want 200, waited", n, len(at), err, waited)
	}
	// Each burst's ten messages go together; bursts are 10 ms apart.
	for b := 0; b < 20; b++ {
		first, last := at[b*10], at[b*10+9]
		if last.Sub(first) > 5*time.Millisecond {
			t.Errorf("burst %d spread over %v", b, last.Sub(first))
		}
	}
	if spread := at[199].Sub(at[0]); spread < 180*time.Millisecond {
		t.Errorf("200 messages at 1000/s sent within %v, want about 190 ms", spread)
	}
}

// storedIn is the stream each stored kind writes to.
var storedIn = map[string]string{"js-file": "COST_FILE", "js-memory": "COST_MEMORY", "kv-create": "KV_cost"}

// TestEveryKindSendsAndIsAnswered: each kind's messages reach the server
// and are answered, paced and flat out (a kind whose wait returned early
// would be charged less than its messages cost).
func TestEveryKindSendsAndIsAnswered(t *testing.T) {
	s := testkit.RunServer(t)
	for _, name := range kindNames() {
		t.Run(name, func(t *testing.T) {
			nc := testkit.Connect(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			k, err := newKind(ctx, name, nc, 64)
			if err != nil {
				t.Fatal(err)
			}
			defer k.close()
			n, err := paced(ctx, k, 500, 5, 100*time.Millisecond)
			if err != nil || n != 50 {
				t.Fatalf("paced: %d, %v; want 50", n, err)
			}
			m, err := flatOut(ctx, k, 50*time.Millisecond)
			if err != nil || m == 0 {
				t.Fatalf("flat out: %d, %v", m, err)
			}
			// A stored kind's messages are all stored once wait returned.
			if stream, ok := storedIn[name]; ok {
				info, err := testkit.JetStream(t, nc).Stream(ctx, stream)
				if err != nil {
					t.Fatal(err)
				}
				if got := info.CachedInfo().State.Msgs; got != uint64(n+m) {
					t.Errorf("%s holds %d messages, %d sent", stream, got, n+m)
				}
			}
		})
	}
}

// TestARefusedPublishFailsTheRun: an async publish the server does not
// store (its stream gone here) fails the wait, rather than counting as
// answered.
func TestARefusedPublishFailsTheRun(t *testing.T) {
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := newKind(ctx, "js-file", nc, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := testkit.JetStream(t, nc).DeleteStream(ctx, storedIn["js-file"]); err != nil {
		t.Fatal(err)
	}
	if err := k.send(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := answered(ctx, k); err == nil {
		t.Fatal("a publish to no stream counted as answered")
	}
}

// TestSettingsThatWouldNeverEndAreRefused: a burst of none (a run that
// never ends) and no time to measure in are refused before a server is
// started.
func TestSettingsThatWouldNeverEndAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-bursts", "1,0", "-nats-server", "/nonexistent"},
		{"-duration", "0s", "-nats-server", "/nonexistent"},
		{"-idle", "0s", "-nats-server", "/nonexistent"},
		{"-rates", "-5", "-nats-server", "/nonexistent"},
		{"-kinds", "core,>", "-nats-server", "/nonexistent"},
	} {
		err := run(context.Background(), args)
		if err == nil || strings.Contains(err.Error(), "nonexistent") {
			t.Errorf("natscost %v: %v, want the setting refused before starting", args, err)
		}
	}
}
