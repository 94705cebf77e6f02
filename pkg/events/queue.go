package events

import (
	"fmt"
	"time"
)

// QueueStatsTTL drops the figures of a shard whose owner stopped writing
// them (a dead matcher, a mode nobody plays any more): a frontend then
// shows no expected wait rather than an old one. Owners write every
// couple of seconds, and again well inside this when nothing changed.
const QueueStatsTTL = time.Minute

// QueueStats is what the owner of a shard knows about the queue of one of
// its modes. The matcher puts it in the queue bucket under [QueueKey]
// every couple of seconds; frontends watch the bucket and show waiting
// players their shard's expected wait.
type QueueStats struct {
	SchemaVersion int    `json:"schema_version"`
	Region        string `json:"region"`
	Tier          string `json:"tier"`
	Mode          string `json:"mode"`
	// Waiting is how many tickets the shard's pool of the mode holds.
	Waiting int `json:"waiting"`
	// ExpectedWaitMS is the expected wait of a ticket of this shard and
	// mode, from its creation to its match, in milliseconds; 0 (left
	// out) when there is nothing to estimate it from.
	ExpectedWaitMS int64 `json:"expected_wait_ms,omitempty"`
	// Matched is how many tickets of the shard and mode were matched in
	// the window the estimate is taken over (the last minute).
	Matched   int       `json:"matched"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ExpectedWait is ExpectedWaitMS as a duration; ok is false when it is
// unknown.
func (q QueueStats) ExpectedWait() (d time.Duration, ok bool) {
	return time.Duration(q.ExpectedWaitMS) * time.Millisecond, q.ExpectedWaitMS > 0
}

// QueueKey is the key of a shard's figures for one mode in the queue
// bucket: `<region>.<tier>.<mode>`. Each part must be a token (letters,
// digits, '-', '_'), so that a mode name from a rule set can neither
// collide with another key nor make an invalid one.
func QueueKey(region, tier, mode string) (string, error) {
	for _, p := range []struct{ field, v string }{{"region", region}, {"tier", tier}, {"mode", mode}} {
		if err := checkToken(p.v); err != nil {
			return "", fmt.Errorf("queue key: %s: %w", p.field, err)
		}
	}
	return region + "." + tier + "." + mode, nil
}

// DecodeQueueStats reads a shard's queue figures. Only the matcher's NATS
// user may write the bucket, so it is read as a payload from a service
// (decodeFromService: a newer matcher may add a field while older
// frontends still run), with every field checked.
func DecodeQueueStats(data []byte) (QueueStats, error) {
	return decodeChecked("queue stats", data, decodeFromService, func(q *QueueStats, fe *FieldErrors) {
		fe.version(q.SchemaVersion)
		fe.Token("region", q.Region)
		fe.Token("tier", q.Tier)
		fe.Token("mode", q.Mode)
		if q.Waiting < 0 {
			fe.Add("waiting", "must not be negative")
		}
		if q.Matched < 0 {
			fe.Add("matched", "must not be negative")
		}
		if q.ExpectedWaitMS < 0 {
			fe.Add("expected_wait_ms", "must not be negative")
		}
		if q.UpdatedAt.IsZero() {
			fe.Add("updated_at", "required")
		}
	})
}
