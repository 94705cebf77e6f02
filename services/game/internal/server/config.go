package server

import (
	"flag"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/envflag"
)

// Config of the game server.
type Config struct {
	// JoinKeys verifies join tokens (required). The game server holds only
	// public keys: it can check a token, never make one.
	JoinKeys Verifier
	// BestOf rounds decide a game (odd).
	BestOf int
	// ReconnectGrace is how long a player who dropped may come back before
	// forfeiting.
	ReconnectGrace time.Duration
	// IdleTimeout ends a room that has not moved on (no seat taken, no
	// move accepted) for this long; the players its round waits for
	// forfeit. Anything else a player sends does not count.
	IdleTimeout time.Duration
	// MaxRooms is how many rooms may run at once; more are refused, and
	// the allocator stops sending matches here when /status says full.
	MaxRooms int
	// SDK is the Agones sidecar; nil runs without Agones (the local stack):
	// rooms open on the first valid join and nothing is reported.
	SDK SDK
	// Reuse sends a server whose rooms have all ended back to Ready (high
	// density reuse); otherwise it asks Agones to shut it down.
	Reuse bool
	// HealthEvery is the Agones health ping interval.
	HealthEvery time.Duration
	// EndedMemory is how long a finished room's match id is refused, at
	// least: without Agones, for as long as a join token the room admitted
	// is valid too (the allocator's join-token-ttl has no bound), so that
	// no token opens it afresh; forgetting the id after keeps a
	// long-lived server's memory flat. A backfill token the room never
	// saw (issued for a seat nobody took before the room ended) is not
	// counted: without Agones, EndedMemory must outlast -join-token-ttl
	// for those. Under Agones a forgotten room stays closed because its
	// id has left the rooms List, not because of this memory.
	EndedMemory time.Duration
	// RetireAnnotationBytes is the size of the GameServer's annotations
	// (keys plus values, as Kubernetes counts them against the 256 KiB
	// an object may hold) at which the server retires (retire.go): Agones
	// never removes an allocation's annotation, so a server reused for
	// long would reach the limit and then have every allocation refused.
	// At most 256 KiB less the largest room annotation.
	RetireAnnotationBytes int
	// BackfillReask is how long a room's backfill request may stay open
	// under one Ask, its free seats unchanged, before the room asks again
	// under a new Ask (backfill.go): a request is filled at most once, so
	// a room whose player sent for the seat never joins would otherwise
	// keep asking under an Ask already filled, and never get anyone. The
	// allocator holds the seat of a player it sent until their join token
	// expires (join-token-ttl), so a new Ask made sooner gets no one
	// sooner, and never a second player for the seat.
	BackfillReask time.Duration
}

// defaults are the one statement of the defaults: New fills a zero field
// from them, and RegisterFlags shows them as the flags' defaults.
var defaults = Config{
	BestOf:         3,                // a short game: two wins decide it
	ReconnectGrace: 15 * time.Second, // long enough to reload a page
	IdleTimeout:    2 * time.Minute,  // a room nobody plays in gives its slot back
	MaxRooms:       100,
	HealthEvery:    2 * time.Second, // well inside Agones' default health failure window
	EndedMemory:    time.Hour,       // above any join-token-ttl in use
	// 64 KiB below the limit: room for the annotations of about three of
	// the largest rooms (100 players, about 17.7 KB each with their kept
	// seats; hundreds of 1v1s) allocated before the retiring label
	// reaches the allocator, and for Agones' own.
	RetireAnnotationBytes: 192 << 10,
	// The allocator's default join-token-ttl (see BackfillReask): raise
	// it with that flag.
	BackfillReask: 10 * time.Minute,
	// Reuse is the flag's default only; setDefaults leaves it alone,
	// because false is a choice, not "unset": with an SDK, shut the server
	// down after its last room.
	Reuse: true,
}

func (c *Config) setDefaults() {
	envflag.OrDefault(&c.BestOf, defaults.BestOf)
	envflag.OrDefault(&c.ReconnectGrace, defaults.ReconnectGrace)
	envflag.OrDefault(&c.IdleTimeout, defaults.IdleTimeout)
	envflag.OrDefault(&c.HealthEvery, defaults.HealthEvery)
	envflag.OrDefault(&c.MaxRooms, defaults.MaxRooms)
	envflag.OrDefault(&c.EndedMemory, defaults.EndedMemory)
	envflag.OrDefault(&c.RetireAnnotationBytes, defaults.RetireAnnotationBytes)
	envflag.OrDefault(&c.BackfillReask, defaults.BackfillReask)
}

// RegisterFlags registers the game server's flags on fs, with the defaults
// above. JoinKeys and SDK are built by the caller (from -join-public-keys
// and -agones-sdk); EndedMemory has no flag.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Reuse, "reuse", defaults.Reuse, "when every room has ended, go back to Ready for reuse (else ask Agones to shut the server down)")
	fs.DurationVar(&c.HealthEvery, "health-interval", defaults.HealthEvery, "Agones health ping interval")
	fs.IntVar(&c.BestOf, "best-of", defaults.BestOf, "rounds that decide a game (odd)")
	fs.DurationVar(&c.ReconnectGrace, "reconnect-grace", defaults.ReconnectGrace, "how long a dropped player may come back before forfeiting")
	fs.IntVar(&c.MaxRooms, "max-rooms", defaults.MaxRooms, "rooms that may run at once")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", defaults.IdleTimeout, "a room in which no seat is taken and no move accepted for this long ends (the players its round waits for forfeit)")
	fs.DurationVar(&c.BackfillReask, "backfill-reask", defaults.BackfillReask, "a room whose backfill request has been open this long, its free seats unchanged, asks again under a new ask (the player sent may never come); the allocator holds the seat of a player it sent until their token expires (its -join-token-ttl), so asking sooner gets no one sooner")
	fs.IntVar(&c.RetireAnnotationBytes, "retire-annotation-bytes", defaults.RetireAnnotationBytes, "size of the GameServer's annotations (keys plus values; Kubernetes allows 256 KiB) at which the server takes no more allocations (label agones.dev/sdk-retiring) and shuts down after its last room")
}
