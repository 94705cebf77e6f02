package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// bucketDrains is the base name of the drains bucket ([Subjects.DrainsBucket]).
const bucketDrains = "drains"

// DrainsBucket holds the drained shards: key `<region>.<tier>` (see
// [Shard.String]), value a [Drain]. A shard is drained while its key holds
// a value, and resumed when the key is deleted. Only operators write it
// ([Drains]); the frontends watch it and refuse new tickets for a
// drained shard, telling the client the reason. The shard's waiting
// tickets are still matched: the matchers do not read the bucket.
func (s Subjects) DrainsBucket() string { return s.streamName(bucketDrains) }

// Bounds of a drain's texts. The reason is told to every client refused
// while the shard is drained, so it is a sentence, not a report; the name
// of who drained it is an operator's name or address.
const (
	MaxDrainReasonBytes = 200
	MaxDrainByBytes     = 64
	// drainValueSize is the bucket's value limit: a drain whose every
	// byte of text JSON writes as six (\u003c) still fits it.
	drainValueSize = 2048
)

// Drain is an operator's order that a shard stop admitting tickets: the
// frontends answer a new ticket for it 503 with Reason until the shard is
// resumed. It is the value of the shard's key in the drains bucket.
type Drain struct {
	// SchemaVersion is SchemaVersion, the version of every payload. A
	// frontend refuses a drain of another version (DecodeDrain): it logs
	// "bad drain ignored" and keeps what it had for the shard, admitting
	// it if it was not drained. So a bump of SchemaVersion breaks drains
	// across a rolling upgrade: a drain written by the newer operator tool
	// holds only on the newer frontends, and the tool cannot tell. Resume
	// is a delete, with no payload, and works across versions. Whoever
	// bumps SchemaVersion should drain with the older tool until every
	// frontend is upgraded (or give Drain a version of its own).
	SchemaVersion int `json:"schema_version"`
	// Reason is told to every client refused meanwhile ("eu game servers
	// upgrade, back at 10:30"): printable text, 1 to MaxDrainReasonBytes.
	Reason string `json:"reason"`
	// By names who drained the shard, for the operators who find it so:
	// printable text, 1 to MaxDrainByBytes. Clients are not told it.
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// check reports every problem of d.
func (d *Drain) check(fe *FieldErrors) {
	fe.version(d.SchemaVersion)
	drainText(fe, "reason", d.Reason, MaxDrainReasonBytes)
	drainText(fe, "by", d.By, MaxDrainByBytes)
	if d.At.IsZero() {
		fe.Add("at", "required")
	}
}

// drainText checks a drain's text: 1 to limit bytes of UTF-8 without a
// control character, since it goes into HTTP bodies and log lines where a
// newline or an escape would forge or garble what follows.
func drainText(fe *FieldErrors, field, v string, limit int) {
	switch {
	case v == "":
		fe.Add(field, "required")
	case len(v) > limit:
		fe.Add(field, "%d bytes long, at most %d allowed", len(v), limit)
	case !utf8.ValidString(v):
		fe.Add(field, "not valid UTF-8")
	case strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }):
		fe.Add(field, "has a character that is not printable")
	}
}

// DecodeDrain reads a drain from the drains bucket. Only the operator's
// NATS user may write the bucket, so it is read as a payload from a
// service (decodeFromService: unknown fields are ignored, so that a drain
// written by a newer operator tool still holds on the frontends of a
// rolling upgrade), with every field checked.
func DecodeDrain(data []byte) (Drain, error) {
	return decodeChecked("drain", data, decodeFromService, func(d *Drain, fe *FieldErrors) { d.check(fe) })
}

// ParseShard reads a shard written as [Shard.String] writes it,
// `<region>.<tier>`: a key of the drains bucket, or an operator's
// argument. Region and tier must each be a token (letters, digits, '-',
// '_'), so that no wildcard or third token can name several shards.
func ParseShard(s string) (Shard, error) {
	region, tier, _ := strings.Cut(s, ".")
	fe := &FieldErrors{Kind: "shard"}
	fe.Token("region", region)
	fe.Token("tier", tier)
	if err := fe.Err(); err != nil {
		return Shard{}, fmt.Errorf("shard %q, want <region>.<tier>: %w", s, err)
	}
	return Shard{Region: region, Tier: tier}, nil
}

// drainKey is the key of s in the drains bucket, once s is checked.
func drainKey(s Shard) (string, error) {
	if _, err := ParseShard(s.String()); err != nil {
		return "", err
	}
	return s.String(), nil
}

// Drains drains and resumes shards: what the operator tool calls. It
// needs the right to write the drains bucket, which the operator's NATS
// user alone has.
type Drains struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// NewDrains binds to the drains bucket.
func NewDrains(ctx context.Context, js jetstream.JetStream, subj Subjects) (*Drains, error) {
	kv, err := js.KeyValue(ctx, subj.DrainsBucket())
	if err != nil {
		return nil, fmt.Errorf("drains bucket: %w", err)
	}
	return &Drains{kv: kv, now: time.Now}, nil
}

// Drain makes shard s stop admitting tickets, telling clients reason; by
// names who asked. Draining a drained shard again replaces its reason.
// An invalid shard, reason or name is refused (ErrInvalid) and nothing is
// written. It returns the drain as stored.
func (d *Drains) Drain(ctx context.Context, s Shard, reason, by string) (Drain, error) {
	key, err := drainKey(s)
	if err != nil {
		return Drain{}, err
	}
	dr := Drain{SchemaVersion: SchemaVersion, Reason: reason, By: by, At: d.now().UTC()}
	fe := &FieldErrors{Kind: "drain"}
	dr.check(fe)
	if err := fe.Err(); err != nil {
		return Drain{}, err
	}
	data, err := json.Marshal(dr)
	if err != nil {
		return Drain{}, fmt.Errorf("encode drain of %s: %w", key, err)
	}
	if _, err := d.kv.Put(ctx, key, data); err != nil {
		return Drain{}, fmt.Errorf("drain %s: %w", key, err)
	}
	return dr, nil
}

// Resume makes shard s admit tickets again. was reports whether it was
// drained; resuming a shard that is not is no error. The key is deleted,
// not purged: the delete stays in the bucket as its last entry, so a
// frontend whose watch starts again after a gap still hears of it.
func (d *Drains) Resume(ctx context.Context, s Shard) (was bool, err error) {
	key, err := drainKey(s)
	if err != nil {
		return false, err
	}
	_, err = d.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read drain of %s: %w", key, err)
	}
	if err := d.kv.Delete(ctx, key); err != nil {
		return false, fmt.Errorf("resume %s: %w", key, err)
	}
	return true, nil
}

// List returns every drained shard and its drain. A key or value that
// does not read is an error naming it: whoever lists wants to see it.
func (d *Drains) List(ctx context.Context) (map[Shard]Drain, error) {
	keys, err := d.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list drains: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	out := map[Shard]Drain{}
	var errs []error
	for key := range keys.Keys() {
		dr, err := d.read(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound): // resumed meanwhile
		case err != nil:
			errs = append(errs, err)
		default:
			s, _ := ParseShard(key) // read checked it
			out[s] = dr
		}
	}
	return out, errors.Join(errs...)
}

// read reads and checks the drain under key.
func (d *Drains) read(ctx context.Context, key string) (Drain, error) {
	if _, err := ParseShard(key); err != nil {
		return Drain{}, err
	}
	e, err := d.kv.Get(ctx, key)
	if err != nil {
		return Drain{}, err
	}
	dr, err := DecodeDrain(e.Value())
	if err != nil {
		return Drain{}, fmt.Errorf("drain of %s: %w", key, err)
	}
	return dr, nil
}
