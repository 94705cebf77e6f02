package events

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// differStream, differConsumer and differBucket compare as Provision does.
func differStream(live, decl jetstream.StreamConfig) (bool, error) {
	return differs(live, decl, streamRules)
}

func differConsumer(live, decl jetstream.ConsumerConfig) (bool, error) {
	return differs(live, decl, consumerRules)
}

func differBucket(live, decl jetstream.KeyValueConfig) (bool, error) {
	return differs(live, decl, bucketRules)
}

// TestDiffersComparesWholeConfigs: a difference in any field a declaration
// sets counts, what only the server fills in does not, and a declared zero
// of an omitempty field keeps the live value unless its kind enforces it.
func TestDiffersComparesWholeConfigs(t *testing.T) {
	t.Parallel()
	decl := Topology{}.Streams()[0]
	live := decl
	live.MaxConsumers, live.MaxMsgs, live.MaxMsgsPerSubject = -1, -1, -1
	live.Metadata = map[string]string{"_nats.ver": "2.15.2"}
	with := func(f func(*jetstream.StreamConfig)) jetstream.StreamConfig {
		c := live
		f(&c)
		return c
	}
	kv := Topology{}.Buckets()[3] // leases: no TTL, no byte cap
	kvLive := kv
	kvLive.MaxBytes = -1
	cases := []struct {
		name string
		got  func() (bool, error)
		want bool
	}{
		{"server defaults and metadata", func() (bool, error) { return differStream(live, decl) }, false},
		{"compression, which no one listed", func() (bool, error) {
			return differStream(with(func(c *jetstream.StreamConfig) { c.Compression = jetstream.S2Compression }), decl)
		}, true},
		{"a declared metadata key", func() (bool, error) {
			d := decl
			d.Metadata = map[string]string{"owner": "quickmatch"}
			return differStream(live, d)
		}, true},
		{"limits retention is a choice", func() (bool, error) {
			return differStream(with(func(c *jetstream.StreamConfig) { c.Retention = jetstream.LimitsPolicy }), decl)
		}, true},
		{"no rollup declared keeps a live rollup", func() (bool, error) {
			return differStream(with(func(c *jetstream.StreamConfig) { c.AllowRollup = true }), decl)
		}, false},
		{"bucket as provisioned", func() (bool, error) { return differBucket(kvLive, kv) }, false},
		{"bucket without TTL given one", func() (bool, error) {
			l := kvLive
			l.TTL = time.Hour
			return differBucket(l, kv)
		}, true},
		{"bucket in memory", func() (bool, error) {
			l := kvLive
			l.Storage = jetstream.MemoryStorage
			return differBucket(l, kv)
		}, true},
		{"bucket compression off cannot be declared", func() (bool, error) {
			l := kvLive
			l.Compression = true
			return differBucket(l, kv)
		}, false},
	}
	for _, c := range cases {
		got, err := c.got()
		if err != nil || got != c.want {
			t.Errorf("%s: differs = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

// TestProvisionAppliesAFieldNewToADeclaration: a field no earlier code
// compared (metadata) added to a stream's, a consumer's and a bucket's
// declaration reaches the live configuration, and then nothing differs.
func TestProvisionAppliesAFieldNewToADeclaration(t *testing.T) {
	t.Parallel()
	topo := Topology{}
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	ctx := t.Context()
	if err := Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"owner": "quickmatch"}

	stream := topo.Streams()[0]
	stream.Metadata = meta
	cons := topo.Consumers()[0]
	cons.Config.Metadata = meta
	bucket := topo.Buckets()[0]
	bucket.Metadata = meta
	if err := ensureStream(ctx, js, stream); err != nil {
		t.Fatal(err)
	}
	if err := ensureConsumer(ctx, js, cons); err != nil {
		t.Fatal(err)
	}
	if err := ensureBucket(ctx, js, bucket); err != nil {
		t.Fatal(err)
	}

	live := liveConfigs(ctx, t, js, stream.Name, cons, bucket.Bucket)
	for name, m := range map[string]map[string]string{
		"stream": live.stream.Metadata, "consumer": live.consumer.Metadata, "bucket": live.bucket.Metadata,
	} {
		if m["owner"] != "quickmatch" {
			t.Errorf("%s metadata = %v, want the declared owner", name, m)
		}
	}
	for name, check := range map[string]func() (bool, error){
		"stream":   func() (bool, error) { return differStream(live.stream, stream) },
		"consumer": func() (bool, error) { return differConsumer(live.consumer, cons.Config) },
		"bucket":   func() (bool, error) { return differBucket(live.bucket, bucket) },
	} {
		if changed, err := check(); err != nil || changed {
			t.Errorf("%s still differs after the update: %v %v", name, changed, err)
		}
	}
}

type live struct {
	stream   jetstream.StreamConfig
	consumer jetstream.ConsumerConfig
	bucket   jetstream.KeyValueConfig
}

func liveConfigs(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string, c StreamConsumer, bucket string) live {
	t.Helper()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, c.Stream, c.Config.Durable)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return live{st.CachedInfo().Config, cons.CachedInfo().Config, status.Config()}
}

// TestRulesNameRealFields: every field a rule names is a field of its
// kind, of a type the rule can handle.
func TestRulesNameRealFields(t *testing.T) {
	t.Parallel()
	for _, k := range []struct {
		typ reflect.Type
		r   rules
	}{
		{reflect.TypeFor[jetstream.StreamConfig](), streamRules},
		{reflect.TypeFor[jetstream.ConsumerConfig](), consumerRules},
		{reflect.TypeFor[jetstream.KeyValueConfig](), bucketRules},
	} {
		for _, names := range [][]string{k.r.zeros, k.r.unlimited, k.r.atLeastOne} {
			for _, n := range names {
				if _, ok := k.typ.FieldByName(n); !ok {
					t.Errorf("%s has no field %s", k.typ, n)
				}
			}
		}
		for _, n := range k.r.unlimited {
			if f, ok := k.typ.FieldByName(n); ok && !reflect.Zero(f.Type).CanInt() {
				t.Errorf("%s.%s holds -1 for no limit, so it must be a signed integer", k.typ, n)
			}
		}
	}
}
