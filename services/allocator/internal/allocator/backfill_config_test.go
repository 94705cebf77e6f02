package allocator

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

// TestBackfillMinIntervalFlag: -backfill-min-interval (env
// BACKFILL_MIN_INTERVAL) sets MinInterval, -backfill-turnover Turnover;
// unset, each is its default, and a zero config gets the defaults too.
func TestBackfillMinIntervalFlag(t *testing.T) {
	parse := func(args ...string) BackfillConfig {
		t.Helper()
		var c BackfillConfig
		fs := flag.NewFlagSet("allocator", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := envflag.Parse(fs, args); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := parse(); c.MinInterval != 5*time.Second {
		t.Fatalf("default %s, want 5s", c.MinInterval)
	}
	if c := parse("-backfill-min-interval=2s"); c.MinInterval != 2*time.Second {
		t.Fatalf("flag: %s", c.MinInterval)
	}
	t.Setenv("BACKFILL_MIN_INTERVAL", "7s")
	if c := parse(); c.MinInterval != 7*time.Second {
		t.Fatalf("env: %s", c.MinInterval)
	}
	if c := parse(); c.Turnover != 4 {
		t.Fatalf("default turnover %d, want 4", c.Turnover)
	}
	if c := parse("-backfill-turnover=10"); c.Turnover != 10 {
		t.Fatalf("turnover flag: %d", c.Turnover)
	}
	if c := parse(); c.Refill != time.Hour {
		t.Fatalf("default refill %s, want 1h", c.Refill)
	}
	if c := parse("-backfill-refill=0"); c.Refill != 0 || (&BackfillConfig{Every: 1, MinInterval: 1, Turnover: 1, Refill: c.Refill}).Validate() != nil {
		t.Fatalf("refill 0 (never): %s", c.Refill)
	}
	// A zero config gets the defaults, but a zero Refill means never
	// (the flag's 0), so it stays.
	var c BackfillConfig
	c.setDefaults()
	want := backfillDefaults
	want.Refill = 0
	if c != want {
		t.Fatalf("zero config: %+v, want %+v", c, want)
	}
}

// TestBackfillConfigValidate: the defaults are valid; an Every (the
// allocator's -capacity-interval), a MinInterval or a Turnover of zero
// or less, or a negative Refill, is refused, each named, all at once.
func TestBackfillConfigValidate(t *testing.T) {
	var c BackfillConfig
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := (&BackfillConfig{Every: 0, MinInterval: -time.Second, Refill: -time.Second}).Validate()
	if err == nil || !strings.Contains(err.Error(), "-capacity-interval") || !strings.Contains(err.Error(), "-backfill-min-interval") ||
		!strings.Contains(err.Error(), "-backfill-turnover") || !strings.Contains(err.Error(), "-backfill-refill") {
		t.Fatalf("Validate = %v, want both refused", err)
	}
}
