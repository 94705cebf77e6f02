package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

func TestParseShard(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, key string
		want      events.Shard
		bad       bool
	}{
		{name: "region and tier", key: "eu.gold", want: events.Shard{Region: "eu", Tier: "gold"}},
		{name: "a wildcard tier", key: "eu.*", bad: true},
		{name: "every shard", key: ">", bad: true},
		{name: "a wildcard region", key: "*.gold", bad: true},
		{name: "three tokens", key: "eu.gold.1v1", bad: true},
		{name: "no tier", key: "eu", bad: true},
		{name: "empty tier", key: "eu.", bad: true},
		{name: "a space", key: "eu. gold", bad: true},
		{name: "empty", key: "", bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := events.ParseShard(c.key)
			if c.bad {
				if !errors.Is(err, events.ErrInvalid) {
					t.Fatalf("ParseShard(%q) = %v, %v; want an invalid shard", c.key, got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseShard(%q) = %v, %v; want %v", c.key, got, err, c.want)
			}
		})
	}
}

func TestDecodeDrain(t *testing.T) {
	t.Parallel()
	good := `{"schema_version":1,"reason":"eu game servers upgrade, back at 10:30","by":"alice@ops","at":"2026-12-02T09:00:00Z"}`
	long := strings.Repeat("x", events.MaxDrainReasonBytes+1)
	for _, c := range []struct {
		name, data string
		field      string // "" when it decodes, "-" when it names none
	}{
		{name: "a drain", data: good},
		{name: "reason at its bound", data: strings.Replace(good, "eu game servers upgrade, back at 10:30", long[1:], 1)},
		// A newer operator tool may add a field while older frontends run:
		// were it refused, the drain would not hold there.
		{name: "a newer field", data: strings.Replace(good, `"by"`, `"until":"2026-12-02T10:30:00Z","by"`, 1)},
		{name: "reason too long", data: strings.Replace(good, "eu game servers upgrade, back at 10:30", long, 1), field: "reason"},
		{name: "reason with a newline", data: strings.Replace(good, "upgrade, back", `upgrade\nback`, 1), field: "reason"},
		{name: "reason with an escape", data: strings.Replace(good, "upgrade, back", `upgrade\u001b[2Jback`, 1), field: "reason"},
		{name: "no reason", data: strings.Replace(good, "eu game servers upgrade, back at 10:30", "", 1), field: "reason"},
		{name: "no one", data: strings.Replace(good, "alice@ops", "", 1), field: "by"},
		{name: "by too long", data: strings.Replace(good, "alice@ops", long[:events.MaxDrainByBytes+1], 1), field: "by"},
		{name: "another version", data: strings.Replace(good, `"schema_version":1`, `"schema_version":2`, 1), field: "schema_version"},
		{name: "no version", data: strings.Replace(good, `"schema_version":1,`, ``, 1), field: "schema_version"},
		{name: "no time", data: strings.Replace(good, `,"at":"2026-12-02T09:00:00Z"`, ``, 1), field: "at"},
		{name: "wrong type", data: strings.Replace(good, `"by":"alice@ops"`, `"by":7`, 1), field: "by"},
		{name: "not an object", data: `"drained"`, field: "-"},
		{name: "not JSON", data: `drained`, field: "-"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := events.DecodeDrain([]byte(c.data))
			if c.field != "" {
				var ve *events.ValidationError
				if !errors.As(err, &ve) || c.field != "-" && ve.Fields[0].Field != c.field {
					t.Fatalf("err = %v, want one naming %s", err, c.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Reason == "" || d.By != "alice@ops" || d.At.IsZero() {
				t.Fatalf("decoded %+v", d)
			}
		})
	}
}

// Drain writes what the frontends read; Resume takes it away; both say
// what was there; an invalid drain is refused before anything is
// written; List shows the drained shards.
func TestDrainAndResume(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	subj := events.Subjects{Prefix: "dr"}
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	drains, err := events.NewDrains(t.Context(), js, subj)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), subj.DrainsBucket())
	if err != nil {
		t.Fatal(err)
	}
	eu := events.Shard{Region: "eu", Tier: "gold"}
	d, err := drains.Drain(t.Context(), eu, "game servers upgrade", "alice")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(t.Context(), "eu.gold")
	if err != nil {
		t.Fatal(err)
	}
	got, err := events.DecodeDrain(e.Value())
	if err != nil || got != d || got.Reason != "game servers upgrade" || got.By != "alice" || time.Since(got.At) > time.Minute {
		t.Fatalf("stored %+v, %v; Drain returned %+v", got, err, d)
	}
	for _, bad := range []struct {
		shard      events.Shard
		reason, by string
	}{
		{events.Shard{Region: "*", Tier: "gold"}, "r", "alice"},
		{events.Shard{Region: "us", Tier: "gold.x"}, "r", "alice"},
		{events.Shard{Region: "us", Tier: "gold"}, strings.Repeat("r", events.MaxDrainReasonBytes+1), "alice"},
		{events.Shard{Region: "us", Tier: "gold"}, "", "alice"},
		{events.Shard{Region: "us", Tier: "gold"}, "r", ""},
	} {
		if _, err := drains.Drain(t.Context(), bad.shard, bad.reason, bad.by); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("Drain(%v, %q, %q) = %v, want invalid", bad.shard, bad.reason, bad.by, err)
		}
	}
	if _, err := kv.Get(t.Context(), "us.gold"); err == nil {
		t.Error("an invalid drain was written")
	}
	if _, err := drains.Drain(t.Context(), events.Shard{Region: "us", Tier: "silver"}, "quiet", "bob"); err != nil {
		t.Fatal(err)
	}
	list, err := drains.List(t.Context())
	if err != nil || len(list) != 2 || list[eu].Reason != "game servers upgrade" || list[events.Shard{Region: "us", Tier: "silver"}].By != "bob" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	was, err := drains.Resume(t.Context(), eu)
	if err != nil || !was {
		t.Fatalf("Resume = %v, %v; want it drained before", was, err)
	}
	if e, err := kv.Get(t.Context(), "eu.gold"); err == nil {
		t.Fatalf("still drained after Resume: %s", e.Value())
	}
	if was, err := drains.Resume(t.Context(), eu); err != nil || was {
		t.Fatalf("Resume again = %v, %v; want not drained, no error", was, err)
	}
	if _, err := drains.Resume(t.Context(), events.Shard{Region: "eu", Tier: ">"}); !errors.Is(err, events.ErrInvalid) {
		t.Errorf("Resume of a wildcard: %v", err)
	}
	list, err = drains.List(t.Context())
	if err != nil || len(list) != 1 {
		t.Fatalf("List after a resume = %+v, %v", list, err)
	}
}

// What Drain stores, DecodeDrain reads back; the stored value fits the
// bucket's value limit even when every byte of the reason and the name is
// one JSON escapes.
func TestDrainFitsItsBucket(t *testing.T) {
	t.Parallel()
	d := events.Drain{SchemaVersion: events.SchemaVersion, Reason: strings.Repeat("<", events.MaxDrainReasonBytes),
		By: strings.Repeat("&", events.MaxDrainByBytes), At: time.Now().UTC()}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.DecodeDrain(data); err != nil {
		t.Fatal(err)
	}
	for _, b := range (events.Topology{}).Buckets() {
		if b.Bucket == (events.Subjects{}).DrainsBucket() {
			if len(data) > int(b.MaxValueSize) {
				t.Fatalf("a drain of %d bytes, the bucket takes %d", len(data), b.MaxValueSize)
			}
			if b.TTL != 0 {
				t.Fatalf("drains expire after %s: a drain must hold until it is resumed", b.TTL)
			}
			return
		}
	}
	t.Fatal("no drains bucket in the topology")
}

func FuzzDecodeDrain(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"reason":"upgrade","by":"alice","at":"2026-12-02T09:00:00Z"}`))
	f.Add([]byte(`{"schema_version":1,"reason":"a\u0085b","by":"alice","at":"2026-12-02T09:00:00Z"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := events.DecodeDrain(data)
		if err != nil {
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if d.Reason == "" || len(d.Reason) > events.MaxDrainReasonBytes || strings.ContainsAny(d.Reason, "\n\r\x1b\x00") ||
			d.By == "" || len(d.By) > events.MaxDrainByBytes || d.At.IsZero() {
			t.Fatalf("accepted %+v", d)
		}
	})
}

func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"eu.gold", "eu.*", ">", "eu.gold.x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := events.ParseShard(s)
		if err != nil {
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if sh.String() != s || strings.ContainsAny(s, "*> \t") || strings.Count(s, ".") != 1 {
			t.Fatalf("ParseShard(%q) = %+v", s, sh)
		}
	})
}
