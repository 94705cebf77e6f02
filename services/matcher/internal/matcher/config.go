package matcher

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"os"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

// Config of a matcher worker.
type Config struct {
	// WorkerID names this worker in the workers and leases buckets;
	// default: host name and a random suffix.
	WorkerID string
	// Regions and Tiers a ticket's subject must name; they make the shards.
	Regions events.Regions
	Tiers   events.Tiers
	// RulesFile is the rule set file (pkg/rules): the modes and the rules
	// that judge a match in each; empty means rules.Default(). The
	// frontend reads the same file, so both refuse the same tickets.
	RulesFile string
	// RulesReload is how often the rule set file is read again; a
	// changed, good file is put in force without a restart (a bad one is
	// logged and the rules in force are kept). New modes are matched from
	// then on; a removed mode's waiting tickets keep waiting under its
	// old rules until matched or expired (runner.syncRules).
	RulesReload time.Duration
	// SealKeyFile holds the keys that seal the tickets a frontend took
	// first (events.HeaderTaken, events.LoadSeals), the frontends' own
	// file: a ticket whose seal verifies is taken in without reading its
	// players' entries. Empty: every ticket is read, as one with no seal.
	SealKeyFile string
	// MatchSealKeyFile holds the keys that seal the match each claim
	// carries (events.HeaderMatchSeal, events.LoadSeals), the matchers'
	// alone: a carried match is taken only if its seal verifies, so
	// that no other writer of claims (a compromised frontend) can make
	// a matcher send a match of its own making. Empty: carried
	// unsealed, and any carried match is taken.
	MatchSealKeyFile string
	// Sweep is how often each shard expires tickets, retries the oldest
	// ones with their widened windows and offers tickets to other shards.
	Sweep time.Duration
	// SweepAnchors bounds the tickets retried per sweep per mode: half
	// the oldest, half the others in turn (pool.Sweep).
	SweepAnchors int
	// PublishTimeout bounds each publish and claim.
	PublishTimeout time.Duration
	// StraySweep is how often tickets on subjects no shard consumes are
	// looked for and dead-lettered.
	StraySweep time.Duration
	// MatchRecords writes each match's record before its claims, and
	// its claims carry nothing, as matchers before the match travelled
	// in its claims did (events.HeaderMatch), and as they need: one of
	// them that meets a claim with no record behind it counts the match
	// decided, and its tickets are lost; and its provisioning sizes the
	// claims bucket for an owner alone. On while any matcher of an older
	// release may run (a rolling upgrade from one, or back to one); off,
	// a match stores a message less. A match whose room takes backfill
	// (the allocator reads its record), or too big for its claims to
	// carry (events.MaxMatchCarried), has its record either way.
	MatchRecords bool
}

// defaults are the flags' defaults and what a zero field of a Config built
// in code (a test's) falls back to; regions and tiers default to
// events.DefaultRegions and events.DefaultTiers, the worker id to the host
// name and a random suffix.
var defaults = Config{
	// A widened window or an expiry is seen within a quarter second.
	Sweep: 250 * time.Millisecond,
	// Bounds a sweep's work in a crowded pool; the newer tickets are
	// matched as they arrive anyway.
	SweepAnchors: 2000,
	// A few JetStream round trips take milliseconds; longer is NATS away.
	PublishTimeout: 5 * time.Second,
	StraySweep:     strayEvery,
	// A Kubernetes ConfigMap volume takes up to about a minute to show
	// an edit; reading a small file every few seconds adds little to that.
	RulesReload: rules.DefaultReload,
}

// strayEvery is how often a worker looks for tickets on subjects no
// shard consumes (a region or tier this deployment does not serve, a
// malformed subject): published by hand, they would otherwise sit in the
// tickets stream unanswered until it ages them out.
const strayEvery = 2 * time.Second

// RegisterFlags adds the matcher's flags to fs, with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Regions = append(events.Regions(nil), events.DefaultRegions...)
	c.Tiers = append(events.Tiers(nil), events.DefaultTiers...)
	fs.StringVar(&c.WorkerID, "worker-id", "", "name of this worker (default: host name and a random suffix)")
	fs.Var(&c.Regions, "regions", "regions served, comma-separated")
	fs.Var(&c.Tiers, "tiers", "skill tiers as name:min_skill, increasing")
	fs.StringVar(&c.RulesFile, "rules", "", "rule set file, JSON (pkg/rules; default: built-in 1v1, 2v2, 5v5, ffa); reloaded when it changes")
	fs.DurationVar(&c.RulesReload, "rules-reload", defaults.RulesReload, "how often the rule set file is read again")
	fs.StringVar(&c.SealKeyFile, "seal-key-file", "", "file of the keys that seal tickets the frontend took first, the frontends' -seal-key-file (one base64 key of 32 bytes or more per line: openssl rand -base64 32); a sealed ticket is taken in without a read of its players (default: none, every ticket is read)")
	fs.StringVar(&c.MatchSealKeyFile, "match-seal-key-file", "", "file of the keys that seal the match each claim carries, the matchers' alone, not the frontends' (same format as -seal-key-file); a carried match is taken only if its seal verifies (default: none, carried unsealed and taken as it is)")
	fs.DurationVar(&c.Sweep, "sweep", defaults.Sweep, "how often waiting tickets are expired and retried with widened windows")
	fs.IntVar(&c.SweepAnchors, "sweep-anchors", defaults.SweepAnchors, "tickets retried per sweep per shard and mode: half the oldest, half the others in turn")
	fs.DurationVar(&c.PublishTimeout, "publish-timeout", defaults.PublishTimeout, "bound on each publish to JetStream")
	fs.DurationVar(&c.StraySweep, "stray-sweep", defaults.StraySweep, "how often tickets on subjects no shard serves are dead-lettered")
	fs.BoolVar(&c.MatchRecords, "match-records", false, "write each match's record before its claims, which carry nothing, as matchers of releases before the match travelled in its claims need: on while upgrading from or back to one")
}

// setDefaults fills the fields left zero from defaults.
func (c *Config) setDefaults() {
	if len(c.Regions) == 0 {
		c.Regions = events.DefaultRegions
	}
	if len(c.Tiers) == 0 {
		c.Tiers = events.DefaultTiers
	}
	envflag.OrDefault(&c.Sweep, defaults.Sweep)
	envflag.OrDefault(&c.SweepAnchors, defaults.SweepAnchors)
	envflag.OrDefault(&c.PublishTimeout, defaults.PublishTimeout)
	envflag.OrDefault(&c.StraySweep, defaults.StraySweep)
	envflag.OrDefault(&c.RulesReload, defaults.RulesReload)
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		c.WorkerID = host + "-" + hex.EncodeToString(b[:])
	}
}
