package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// provisioned is an embedded JetStream server with topo provisioned.
func provisioned(t *testing.T, topo events.Topology) jetstream.JetStream {
	t.Helper()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	if err := events.Provision(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	return js
}

func TestProvisionIsIdempotent(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	ctx := t.Context()
	topo := events.Topology{}

	for i := range 3 {
		if err := events.Provision(ctx, js, topo); err != nil {
			t.Fatalf("provision #%d: %v", i+1, err)
		}
	}
	for _, want := range topo.Streams() {
		st, err := js.Stream(ctx, want.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", want.Name, err)
		}
		got := st.CachedInfo().Config
		if got.Retention != want.Retention || got.Storage != jetstream.FileStorage || got.Duplicates != want.Duplicates || got.MaxAge != want.MaxAge {
			t.Errorf("stream %s config = %+v, want %+v", want.Name, got, want)
		}
	}
	for _, c := range topo.Consumers() {
		var info *jetstream.ConsumerInfo
		var err error
		if c.Config.DeliverSubject != "" {
			var pc jetstream.PushConsumer
			if pc, err = js.PushConsumer(ctx, c.Stream, c.Config.Durable); err == nil {
				info = pc.CachedInfo()
			}
		} else {
			var cons jetstream.Consumer
			if cons, err = js.Consumer(ctx, c.Stream, c.Config.Durable); err == nil {
				info = cons.CachedInfo()
			}
		}
		if err != nil {
			t.Fatalf("consumer %s: %v", c.Config.Durable, err)
		}
		if got := info.Config; got.AckPolicy != jetstream.AckExplicitPolicy || got.FilterSubject != c.Config.FilterSubject {
			t.Errorf("consumer %s config = %+v", c.Config.Durable, got)
		}
	}
	if _, err := js.KeyValue(ctx, topo.Subjects.TicketsBucket()); err != nil {
		t.Fatalf("bucket: %v", err)
	}

	// A second deployment with a prefix shares the server without touching
	// the first one's streams.
	staging := events.Topology{Subjects: events.Subjects{Prefix: "staging"}}
	if err := events.Provision(ctx, js, staging); err != nil {
		t.Fatalf("provision staging: %v", err)
	}
	names := map[string]bool{}
	for n := range js.StreamNames(ctx).Name() {
		names[n] = true
	}
	for _, n := range []string{"TICKETS", "STAGING_TICKETS", "RESULTS", "STAGING_RESULTS"} {
		if !names[n] {
			t.Errorf("stream %s missing; have %v", n, names)
		}
	}
}

func TestProvisionRejectsBadPrefix(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	if err := events.Provision(t.Context(), js, events.Topology{Subjects: events.Subjects{Prefix: "a.>"}}); err == nil {
		t.Fatal("provisioned with a wildcard prefix")
	}
}

func TestProvisionReplicatedOnCluster(t *testing.T) {
	t.Parallel()
	c := testkit.RunCluster(t, 3)
	js := testkit.JetStream(t, testkit.ConnectURL(t, c.URLs()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	topo := events.Topology{Replicas: 3}
	if err := events.Provision(ctx, js, topo); err != nil {
		t.Fatalf("provision: %v", err)
	}
	if err := events.Provision(ctx, js, topo); err != nil {
		t.Fatalf("provision again: %v", err)
	}
	st, err := js.Stream(ctx, topo.Subjects.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	if r := st.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("replicas = %d, want 3", r)
	}
}

func TestPublisherDeduplicatesAndCarriesMeta(t *testing.T) {
	t.Parallel()
	topo := events.Topology{}
	js := provisioned(t, topo)
	ctx := t.Context()
	pub := events.NewPublisher(js, topo.Subjects)
	mctx := events.WithMeta(ctx, events.Meta{CorrelationID: "corr-1", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	tk := events.Ticket{TicketID: "t-1", PlayerID: "alice", Mode: "1v1", Skill: 1650}
	for range 3 {
		if _, err := pub.Ticket(mctx, "eu", "gold", tk); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(ctx, topo.Subjects.TicketsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages after 3 publishes of one ticket, want 1", info.State.Msgs)
	}
	msg, err := st.GetMsg(ctx, info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	if m := events.MetaFromHeader(msg.Header); m.CorrelationID != "corr-1" || !strings.HasPrefix(m.TraceParent, "00-") {
		t.Fatalf("headers = %v", msg.Header)
	}
	got, err := events.DecodeTicket(msg.Data)
	if err != nil || got.TicketID != "t-1" || msg.Subject != "matchmaking.eu.gold" {
		t.Fatalf("stored %s %s: %v", msg.Subject, msg.Data, err)
	}

	if _, err := pub.Ticket(ctx, "eu", "gold", events.Ticket{PlayerID: "bob"}); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("ticket without id: err = %v", err)
	}
}

// TestHandTypedTicketWithCLI publishes the README's example ticket with the
// real nats CLI and reads it back from the stream.
func TestHandTypedTicketWithCLI(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	nc := testkit.Connect(t, s)
	js := testkit.JetStream(t, nc)
	if err := events.Provision(t.Context(), js, events.Topology{}); err != nil {
		t.Fatal(err)
	}
	testkit.CLI(t, s.ClientURL(), "pub", "matchmaking.eu.gold", `{"player_id":"alice","mode":"1v1","skill":1650}`)
	out := testkit.CLI(t, s.ClientURL(), "stream", "info", "TICKETS", "--json")
	var info struct {
		State struct {
			Messages uint64 `json:"messages"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("stream info: %v\n%s", err, out)
	}
	if info.State.Messages != 1 {
		t.Fatalf("TICKETS holds %d messages, want 1", info.State.Messages)
	}
	st, err := js.Stream(t.Context(), "TICKETS")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(t.Context(), "matchmaking.eu.gold")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.DecodeTicket(raw.Data); err != nil {
		t.Fatalf("the README ticket does not decode: %v", err)
	}
}

// TestProvisionChangesNothingThatIsRight: against a provisioned server,
// Provision sends no create or update (watched on the JetStream API
// subjects); a stream whose config drifted is put back.
func TestProvisionChangesNothingThatIsRight(t *testing.T) {
	t.Parallel()
	topo := events.Topology{}
	js := provisioned(t, topo)
	nc := js.Conn()
	ctx := t.Context()
	var writes []string
	var mu sync.Mutex
	for _, subject := range []string{"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.DURABLE.CREATE.>"} {
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
			mu.Lock()
			writes = append(writes, m.Subject)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := events.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(writes) != 0 {
		t.Fatalf("provisioning a provisioned server sent %v", writes)
	}
	mu.Unlock()

	cfg := topo.Streams()[0]
	cfg.MaxAge = 30 * time.Minute
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := events.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != events.TicketMaxAge {
		t.Fatalf("drifted MaxAge %s not put back", got)
	}
}

// TestProvisionReplacesTheSharedIntake: a deployment of an earlier version
// has one intake consumer over every ticket subject, which a work-queue
// stream would not let the shard consumers overlap. Provision deletes it
// and creates the shard consumers; the tickets waiting in the stream stay
// and go to their shard's consumer.
func TestProvisionReplacesTheSharedIntake(t *testing.T) {
	t.Parallel()
	s := testkit.RunServer(t)
	js := testkit.JetStream(t, testkit.Connect(t, s))
	ctx := t.Context()
	topo := events.Topology{}
	for _, cfg := range topo.Streams() {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateConsumer(ctx, "TICKETS", jetstream.ConsumerConfig{
		Durable: "matcher", FilterSubject: topo.Subjects.AllTickets(), AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, topo.Subjects.Ticket("eu", "gold"), []byte(`{"player_id":"waiting","skill":1700}`)); err != nil {
		t.Fatal(err)
	}
	// The overlap is real: without the deletion no shard consumer fits.
	if _, err := js.CreateConsumer(ctx, "TICKETS", topo.Consumers()[0].Config); err == nil {
		t.Fatal("a shard consumer was created next to the shared intake")
	}
	if err := events.Provision(ctx, js, topo); err != nil {
		t.Fatalf("provision over an earlier version: %v", err)
	}
	if _, err := js.Consumer(ctx, "TICKETS", "matcher"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the shared intake is still there: %v", err)
	}
	cons, err := js.Consumer(ctx, "TICKETS", events.ShardConsumer("eu", "gold"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil || !strings.Contains(string(msg.Data()), "waiting") {
		t.Fatalf("the waiting ticket did not reach its shard: %v", err)
	}
}

// TestRecordBucketsOutgrowTheStreamCap: the byte cap is for queues, not
// for the per-ticket records, which only their TTL bounds. With a cap of
// 16 KiB, the tickets stream refuses what does not fit (the publisher is
// told), while 400 claims (about 60 KiB) are all stored: a steady rate
// never fills the claims, records or allocations.
func TestRecordBucketsOutgrowTheStreamCap(t *testing.T) {
	t.Parallel()
	topo := events.Topology{MaxBytes: 16 << 10}
	js := provisioned(t, topo)
	ctx := t.Context()
	claims, err := events.NewClaims(ctx, js, topo.Subjects)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		id := fmt.Sprintf("r%024d", i)
		if won, _, err := claims.Claim(ctx, id, events.MatchOwner("m"+id)); err != nil || !won {
			t.Fatalf("claim %d of 400: %v %v", i, won, err)
		}
	}
	ticket := []byte(`{"player_id":"filler","skill":1700,"mode":"1v1","latencies_ms":{"eu":20,"us":90,"asia":200}}`)
	var refused error
	for i := 0; i < 1000 && refused == nil; i++ {
		_, refused = js.Publish(ctx, topo.Subjects.Ticket("eu", "gold"), ticket)
	}
	if refused == nil || !strings.Contains(strings.ToLower(refused.Error()), "maximum bytes") {
		t.Fatalf("the tickets stream took 1,000 tickets past its 16 KiB cap: %v", refused)
	}
}

// TestProvisionPutsBackAFieldNoOneListed: the streams are declared
// without compression; streams compressed since (a field the field-by-field
// compare of earlier versions never looked at) are put back, because
// provisioning compares whole configurations.
func TestProvisionPutsBackAFieldNoOneListed(t *testing.T) {
	t.Parallel()
	topo := events.Topology{}
	js := provisioned(t, topo)
	ctx := t.Context()
	declared := map[string]bool{}
	for _, cfg := range topo.Streams() {
		declared[cfg.Name] = true
		cfg.Compression = jetstream.S2Compression
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := events.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		if c := info.Config; declared[c.Name] && c.Compression != jetstream.NoCompression {
			t.Errorf("stream %s: compression %s not put back to none", c.Name, c.Compression)
		}
	}
	if err := streams.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestATicketRecordNeverOutlivesItsClaim: a ticket's record is written
// when it is created, its claim when it is decided (or a few hundred
// milliseconds before the record, when the record's put is retried), so
// the record must live shorter than the claim by more than that. A
// record that outlived its claim (2 h against 1.5 h) made a decided
// ticket read "queued" (no claim), an event stream on it expire it again,
// and a repeat of its keyed POST queue it again: a second outcome.
func TestATicketRecordNeverOutlivesItsClaim(t *testing.T) {
	t.Parallel()
	topo := events.Topology{}
	js := provisioned(t, topo)
	ttl := func(bucket string) time.Duration {
		kv, err := js.KeyValue(t.Context(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st.TTL()
	}
	records, claims := ttl(topo.Subjects.TicketsBucket()), ttl(topo.Subjects.ClaimsBucket())
	if records <= 0 || records+time.Minute > claims {
		t.Fatalf("ticket records live %s, claims %s: a record must go at least a minute before its claim", records, claims)
	}
}

// TestNoServiceCanEmptyABucket: a bucket's stream takes no rollup. nats.go
// makes buckets with rollups on, and one message to any key with
// "Nats-Rollup: all" emptied the bucket: a service allowed to write one
// claim, or one lease, could wipe them all, which the NATS permissions
// (no purge) were meant to stop. Provisioning again, and a bucket's
// update, leave them off.
func TestNoServiceCanEmptyABucket(t *testing.T) {
	t.Parallel()
	topo := events.Topology{}
	js := provisioned(t, topo)
	ctx := t.Context()
	cfg := topo.Buckets()[0]
	cfg.Description = "drifted" // the next provisioning updates the bucket
	if _, err := js.UpdateKeyValue(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := events.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	for _, b := range topo.Buckets() {
		kv, err := js.KeyValue(ctx, b.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "b", "c"} {
			if _, err := kv.Put(ctx, k, []byte("1")); err != nil {
				t.Fatal(err)
			}
		}
		msg := nats.NewMsg("$KV." + b.Bucket + ".x")
		msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupAll)
		msg.Data = []byte("0")
		if _, err := js.PublishMsg(ctx, msg); err == nil {
			t.Errorf("bucket %s took a rollup", b.Bucket)
		}
		if _, err := kv.Get(ctx, "a"); err != nil {
			t.Errorf("bucket %s: a key gone after a rollup: %v", b.Bucket, err)
		}
	}
}
