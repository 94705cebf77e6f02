package events_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestLeaderGetsReadsAsAGetWould: LeaderGets' Get answers what the
// bucket's own Get answers (value, revision, time; deleted, purged and
// missing keys not found) through message gets only, on a bucket that
// answers direct gets, as every bucket nats.go makes does.
func TestLeaderGetsReadsAsAGetWould(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	ctx := t.Context()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "lg", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := events.BindLeaderGets(ctx, js, "lg")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"put": "1", "deleted": "2", "purged": "3", "twice": "4"} {
		if _, err := kv.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, "twice", []byte("5")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "purged"); err != nil {
		t.Fatal(err)
	}
	wants := map[string]jetstream.KeyValueEntry{}
	for _, key := range []string{"put", "twice"} {
		if wants[key], err = kv.Get(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	api := testkit.Collect(t, nc, "$JS.API.>")
	for key, want := range wants {
		got, err := lg.Get(ctx, key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if string(got.Value()) != string(want.Value()) || got.Revision() != want.Revision() ||
			!got.Created().Equal(want.Created()) || got.Key() != key || got.Bucket() != "lg" ||
			got.Operation() != jetstream.KeyValuePut {
			t.Errorf("%s: got %q rev %d at %s, want %q rev %d at %s", key, got.Value(), got.Revision(), got.Created(),
				want.Value(), want.Revision(), want.Created())
		}
	}
	for _, key := range []string{"deleted", "purged", "never"} {
		if _, err := lg.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("%s: %v, want %v", key, err, jetstream.ErrKeyNotFound)
		}
	}
	if _, err := lg.Get(ctx, "a.*"); !errors.Is(err, jetstream.ErrInvalidKey) {
		t.Errorf("a wildcard key: %v", err)
	}
	// Every Get above sent one request; the subscription hears them a
	// little after the server.
	const gets = 5
	testkit.Eventually(t, 5*time.Second, func() bool { return len(api()) >= gets }, "%d API requests heard", len(api()))
	for _, m := range api() {
		if !strings.HasPrefix(m.Subject, "$JS.API.STREAM.MSG.GET.KV_lg") {
			t.Errorf("request on %s", m.Subject)
		}
	}
}
