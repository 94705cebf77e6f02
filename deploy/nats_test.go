package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quickmatch-dev/quickmatch/deploy/deploytest"
	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// users are the users of deploy/nats/nats.conf.
var users = []string{"frontend", "matcher", "allocator", "matchfunction", "provisioner", "operator"}

// startConfigured runs nats-server with deploy/nats/nats.conf, each user's
// password being "<user>-pw".
func startConfigured(t *testing.T) *server.Server {
	t.Helper()
	for _, u := range users {
		t.Setenv(strings.ToUpper(u)+"_PASSWORD", u+"-pw")
	}
	t.Setenv("SERVER_NAME", "perm-test")
	opts, err := server.ProcessConfigFile(filepath.Join(deploytest.Root(t), "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.NoSigs = "127.0.0.1", -1, 0, true
	opts.StoreDir = t.TempDir()
	s, err := testkit.StartServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// as connects as user and returns the connection and the permission
// errors the server sends it.
func as(t *testing.T, s *server.Server, user string) (*nats.Conn, chan error) {
	t.Helper()
	errs := make(chan error, 64)
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, user+"-pw"), nats.CustomInboxPrefix("_INBOX_"+user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// refused waits for the server to refuse subject.
func refused(t *testing.T, errs chan error, what, subject string) {
	t.Helper()
	timeout := time.After(2 * time.Second)
	for {
		select {
		case err := <-errs:
			if strings.Contains(err.Error(), "Permissions Violation for "+what+` to "`+subject+`"`) {
				return
			}
		case <-timeout:
			t.Errorf("%s to %q was not refused", what, subject)
			return
		}
	}
}

// Each service's user is refused every subject that is not its own: no
// service can forge another's messages, read what is not its job, read
// another's replies, or delete and purge streams.
func TestNATSPermissionsRefuseWhatIsNotTheirs(t *testing.T) {
	s := startConfigured(t)
	forbidden := map[string]struct{ pub, sub []string }{
		"frontend": {
			pub: []string{"allocations.eu", "offers.eu.gold", "deadletter.matcher", "$KV.capacity.eu", "$KV.leases.eu-gold", "$KV.queue.eu.gold.1v1", "$KV.roommatches.m1",
				"$KV.drains.eu.gold", // only operators drain and resume shards
				"$JS.API.STREAM.DELETE.TICKETS", "$JS.API.STREAM.PURGE.RESULTS", "$JS.API.CONSUMER.DELETE.TICKETS.matcher",
				// it reads the messages of its own buckets and the results, no other stream's
				"$JS.API.STREAM.MSG.GET.DEADLETTER", "$JS.API.DIRECT.GET.KV_leases.$KV.leases.eu-gold", "$JS.API.DIRECT.GET.KV_workers",
				"$JS.API.STREAM.MSG.GET.KV_allocations", "$JS.API.DIRECT.GET.KV_roommatches.$KV.roommatches.m1", "$JS.API.DIRECT.GET.TICKETS",
				// it answers the frontends' questions, no other service's inbox
				// (a result's PubAck: no allow_responses)
				"_INBOX_matcher.x", "_INBOX_allocator.x"},
			sub: []string{"matchmaking.>", "allocations.>", "offers.>", "_INBOX_matcher.x", "$KV.claims.>", ">"},
		},
		"matcher": {
			pub: []string{"matchmaking.eu.gold", "deadletter.allocator", "$KV.capacity.eu", "$KV.tickets.t1", "$KV.roommatches.m1", "$KV.drains.eu.gold",
				"$JS.API.STREAM.DELETE.OFFERS", "$JS.API.STREAM.PURGE.TICKETS",
				// stored results carry join tokens: no get of RESULTS either
				"$JS.API.DIRECT.GET.RESULTS.results.alice", "$JS.API.STREAM.MSG.GET.RESULTS", "$JS.API.DIRECT.GET.KV_tickets.$KV.tickets.t1",
				"$JS.API.CONSUMER.MSG.NEXT.ALLOCATIONS.allocator", // only allocators take matches
				"follows.t1", "_INBOX_frontend.x"}, // only frontends ask and answer who follows a ticket
			sub: []string{"results.>", "allocations.>", "_INBOX_frontend.x", "follows.*"},
		},
		"allocator": {
			pub: []string{"allocations.eu", "offers.eu.gold", "cancels.eu.gold", "$KV.leases.x", "$KV.matches.m1", "$KV.tickets.t1", "$KV.queue.eu.gold.1v1", "$KV.drains.eu.gold",
				"$JS.API.STREAM.DELETE.ALLOCATIONS", "$JS.API.STREAM.PURGE.ALLOCATIONS",
				"$JS.API.DIRECT.GET.RESULTS.results.alice", "$JS.API.STREAM.MSG.GET.RESULTS", "$JS.API.DIRECT.GET.KV_players.$KV.players.alice",
				// it pulls its own matches, no shard's tickets
				"$JS.API.CONSUMER.MSG.NEXT.TICKETS.eu-gold", "$JS.API.CONSUMER.MSG.NEXT.ALLOCATIONS.other"},
			sub: []string{"results.>", "matchmaking.>", "cancels.>", "_INBOX_matcher.x"},
		},
		"operator": {
			pub: []string{"$JS.API.STREAM.DELETE.TICKETS", "$JS.API.STREAM.PURGE.TICKETS"},
		},
		// A match function answers requests and does nothing else.
		"matchfunction": {
			pub: []string{"matchmaking.eu.gold", "allocations.eu", "results.alice", "matchfunctions.other", "_INBOX_matcher.x",
				"$KV.claims.t1", "$JS.API.INFO", "follows.t1"},
			sub: []string{"results.>", "matchmaking.>", "_INBOX_matcher.x", "cancels.>"},
		},
	}
	for user, f := range forbidden {
		t.Run(user, func(t *testing.T) {
			nc, errs := as(t, s, user)
			for _, subj := range f.pub {
				if err := nc.Publish(subj, []byte("x")); err != nil {
					t.Fatal(err)
				}
				refused(t, errs, "Publish", subj)
			}
			for _, subj := range f.sub {
				if _, err := nc.SubscribeSync(subj); err != nil {
					t.Fatal(err)
				}
				refused(t, errs, "Subscription", subj)
			}
		})
	}
}

// What each service needs is allowed: its own publishes reach a
// subscriber, and its subscriptions are not refused.
func TestNATSPermissionsAllowTheirOwn(t *testing.T) {
	s := startConfigured(t)
	op, _ := as(t, s, "operator")
	allowed := map[string]struct{ pub, sub []string }{
		"frontend": {pub: []string{"matchmaking.eu.gold", "cancels.eu.gold", "results.alice", "deadletter.frontend", "follows.t1", "follows._frontends", "_INBOX_frontend.r1"},
			sub: []string{"results.>", "_INBOX_frontend.r1", "follows.*"}},
		"matcher": {pub: []string{"offers.eu.gold", "allocations.eu", "results.alice", "deadletter.matcher", "cancels.eu.gold", "matchfunctions.mmf"}, sub: []string{"cancels.>", "_INBOX_matcher.r1"}},
		"allocator": {pub: []string{"results.alice", "deadletter.allocator", "matchmaking.eu.gold", "$JS.API.CONSUMER.MSG.NEXT.ALLOCATIONS.allocator"},
			sub: []string{"_INBOX_allocator.r1", "deliver.allocator"}}, // the push consumer's, for one release (nats.conf)
	}
	for user, a := range allowed {
		t.Run(user, func(t *testing.T) {
			nc, errs := as(t, s, user)
			for _, subj := range a.pub {
				sub, err := op.SubscribeSync(subj)
				if err != nil {
					t.Fatal(err)
				}
				_ = op.Flush()
				if err := nc.Publish(subj, []byte(user)); err != nil {
					t.Fatal(err)
				}
				if _, err := sub.NextMsg(2 * time.Second); err != nil {
					t.Errorf("%s's publish to %s did not arrive: %v", user, subj, err)
				}
				_ = sub.Unsubscribe()
			}
			for _, subj := range a.sub {
				if _, err := nc.SubscribeSync(subj); err != nil {
					t.Fatal(err)
				}
			}
			_ = nc.Flush()
			select {
			case err := <-errs:
				t.Errorf("%s: %v", user, err)
			case <-time.After(300 * time.Millisecond):
			}
		})
	}
}

// Without credentials, or with a wrong password, nothing connects.
func TestNATSRefusesStrangers(t *testing.T) {
	s := startConfigured(t)
	for _, opt := range []nats.Option{nil, nats.UserInfo("frontend", "wrong"), nats.UserInfo("player", "player-pw")} {
		opts := []nats.Option{nats.MaxReconnects(0)}
		if opt != nil {
			opts = append(opts, opt)
		}
		nc, err := nats.Connect(s.ClientURL(), opts...)
		if err == nil {
			nc.Close()
			t.Errorf("connected with %v", fmt.Sprint(opt != nil))
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("refused, but not for authorization: %v", err)
		}
	}
}

// userURL is the server's URL with user's credentials, for the nats CLI.
func userURL(s *server.Server, user string) string {
	u, _ := url.Parse(s.ClientURL())
	u.User = url.UserPassword(user, user+"-pw")
	return u.String()
}

// provisioned provisions the topology as user and returns an operator's
// JetStream context to look at it.
func provisioned(t *testing.T, s *server.Server, user string) jetstream.JetStream {
	t.Helper()
	nc, _ := as(t, s, user)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := events.Provision(ctx, testkit.JetStream(t, nc), events.Topology{}); err != nil {
		t.Fatalf("provision as %s: %v", user, err)
	}
	op, _ := as(t, s, "operator")
	return testkit.JetStream(t, op)
}

// An upgrade's provisioning step, as the provisioner user, makes the
// allocators' push consumer of earlier versions a pull consumer: the
// server changes no consumer's kind in place, so it deletes it first,
// which the provisioner was not allowed (review R17's H1: the step ended
// refused, and the upgrade with it).
func TestProvisionerMakesTheAllocatorsPushConsumerAPullConsumer(t *testing.T) {
	s := startConfigured(t)
	op := provisioned(t, s, "provisioner")
	old := events.Topology{}.PushAllocatorConsumer()
	if err := op.DeleteConsumer(t.Context(), old.Stream, old.Config.Durable); err != nil {
		t.Fatal(err)
	}
	if _, err := op.CreatePushConsumer(t.Context(), old.Stream, old.Config); err != nil {
		t.Fatal(err)
	}
	provisioned(t, s, "provisioner")
	if _, err := op.Consumer(t.Context(), old.Stream, old.Config.Durable); err != nil {
		t.Fatalf("the allocators' consumer after the upgrade's provisioning: %v", err)
	}
}

// No service's user can create, update, delete or purge a stream, nor
// create, update or delete a durable consumer: with the frontend's user,
// `nats stream edit TICKETS --max-msgs=1` stopped all intake until a
// restart. Each attack is tried through the nats CLI and jetstream as a
// client would, and its raw API subject is shown refused; the topology is
// unchanged afterwards.
func TestNATSServiceUsersCannotManageStreamsOrConsumers(t *testing.T) {
	s := startConfigured(t)
	// The operator provisions here: it could before and after the
	// provisioner user existed, so this test fails on a nats.conf that lets
	// service users manage streams, not on a missing provisioner.
	op := provisioned(t, s, "operator")
	tickets, err := op.Stream(t.Context(), "TICKETS")
	if err != nil {
		t.Fatal(err)
	}
	want := tickets.CachedInfo().Config
	consumers := func() []string {
		var names []string
		for _, stream := range []string{"TICKETS", "OFFERS", "ALLOCATIONS"} {
			st, err := op.Stream(t.Context(), stream)
			if err != nil {
				t.Fatal(err)
			}
			l := st.ConsumerNames(t.Context())
			for n := range l.Name() {
				names = append(names, stream+"/"+n)
			}
			if l.Err() != nil {
				t.Fatal(l.Err())
			}
		}
		return names
	}
	wantConsumers := consumers()
	attacks := []string{
		"$JS.API.STREAM.CREATE.EVIL", "$JS.API.STREAM.CREATE.TICKETS",
		"$JS.API.STREAM.UPDATE.TICKETS", "$JS.API.STREAM.UPDATE.RESULTS", "$JS.API.STREAM.UPDATE.KV_claims",
		"$JS.API.STREAM.DELETE.TICKETS", "$JS.API.STREAM.DELETE.KV_tickets",
		"$JS.API.STREAM.PURGE.TICKETS", "$JS.API.STREAM.PURGE.KV_claims",
		"$JS.API.CONSUMER.CREATE.TICKETS", "$JS.API.CONSUMER.CREATE.RESULTS.spy",
		"$JS.API.CONSUMER.CREATE.TICKETS.tickets-eu-gold.matchmaking.eu.gold",
		"$JS.API.CONSUMER.CREATE.TICKETS.thief.matchmaking.mars.gold",
		"$JS.API.CONSUMER.DURABLE.CREATE.ALLOCATIONS.allocator", "$JS.API.CONSUMER.DURABLE.CREATE.OFFERS.spy",
		"$JS.API.CONSUMER.DELETE.TICKETS.tickets-eu-gold", "$JS.API.CONSUMER.DELETE.OFFERS.offers-eu-gold",
		"$JS.API.CONSUMER.DELETE.ALLOCATIONS.allocator", "$JS.API.CONSUMER.DELETE.TICKETS.matcher",
	}
	for _, user := range []string{"frontend", "matcher", "allocator"} {
		t.Run(user, func(t *testing.T) {
			inbox := "--inbox-prefix=_INBOX_" + user // the replies it may read
			quick := "--timeout=2s"                  // a refused request is not answered
			out, err := testkit.TryCLI(t, userURL(s, user), inbox, quick, "stream", "edit", "TICKETS", "--max-msgs=1", "-f")
			if err == nil {
				t.Errorf("nats stream edit TICKETS --max-msgs=1 as %s succeeded:\n%s", user, out)
			}
			out, err = testkit.TryCLI(t, userURL(s, user), inbox, quick, "consumer", "rm", "TICKETS", "tickets-eu-gold", "-f")
			if err == nil {
				t.Errorf("nats consumer rm TICKETS tickets-eu-gold as %s succeeded:\n%s", user, out)
			}
			nc, errs := as(t, s, user)
			js := testkit.JetStream(t, nc)
			// Each call gets its own time: a refused request is not answered.
			call := func(f func(ctx context.Context) error) error {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				defer cancel()
				return f(ctx)
			}
			edited := want
			edited.MaxMsgs = 1
			if err := call(func(ctx context.Context) error { _, err := js.UpdateStream(ctx, edited); return err }); err == nil {
				t.Error("UpdateStream TICKETS succeeded")
			}
			if err := call(func(ctx context.Context) error {
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
				return err
			}); err == nil {
				t.Error("CreateStream EVIL succeeded")
			}
			if err := call(func(ctx context.Context) error {
				_, err := js.CreateOrUpdateConsumer(ctx, "TICKETS", jetstream.ConsumerConfig{Durable: "thief", FilterSubject: "matchmaking.mars.gold"})
				return err
			}); err == nil {
				t.Error("a durable consumer on TICKETS was created")
			}
			for len(errs) > 0 { // the refusals of the calls above
				<-errs
			}
			for _, subj := range attacks {
				if err := nc.Publish(subj, []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
				refused(t, errs, "Publish", subj)
			}
		})
	}
	after, err := op.Stream(t.Context(), "TICKETS")
	if err != nil {
		t.Fatal(err)
	}
	if got := after.CachedInfo().Config; got.MaxMsgs != want.MaxMsgs || got.MaxBytes != want.MaxBytes {
		t.Errorf("TICKETS was edited: max msgs %d, max bytes %d", got.MaxMsgs, got.MaxBytes)
	}
	if _, err := op.Stream(t.Context(), "EVIL"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream EVIL: %v", err)
	}
	if got := consumers(); strings.Join(got, ",") != strings.Join(wantConsumers, ",") {
		t.Errorf("consumers changed:\n%v\nwant\n%v", got, wantConsumers)
	}
}

// What the services still need of JetStream's API is allowed: the matcher
// rewinds its shards' consumers and deletes a stray ticket; KV watches and
// key listings (ordered consumers on the KV_ streams) work; the matcher
// writes the players bucket.
func TestNATSServiceUsersKeepWhatTheyNeed(t *testing.T) {
	s := startConfigured(t)
	op := provisioned(t, s, "operator")
	if _, err := op.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "players"}); err != nil {
		t.Fatal(err) // pkg/events declares it; made here so this test does not depend on when
	}
	quiet := func(t *testing.T, errs chan error) {
		t.Helper()
		select {
		case err := <-errs:
			t.Errorf("refused: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	t.Run("matcher", func(t *testing.T) {
		nc, errs := as(t, s, "matcher")
		js := testkit.JetStream(t, nc)
		ctx := t.Context()
		st, err := js.Stream(ctx, "TICKETS")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ResetConsumer(ctx, events.ShardConsumer("eu", "gold")); err != nil {
			t.Errorf("reset shard consumer: %v", err)
		}
		ack, err := op.Publish(ctx, "matchmaking.mars.gold", []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetMsg(ctx, ack.Sequence, jetstream.WithGetMsgSubject("matchmaking.*.gold")); err != nil {
			t.Errorf("read a stray ticket (the sweep): %v", err)
		}
		if err := st.DeleteMsg(ctx, ack.Sequence); err != nil {
			t.Errorf("delete a stray ticket: %v", err)
		}
		for _, bucket := range []string{"workers", "leases", "players"} {
			kv, err := js.KeyValue(ctx, bucket)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(ctx, "k1", []byte("v")); err != nil {
				t.Errorf("put %s: %v", bucket, err)
			}
			keys, err := kv.ListKeys(ctx)
			if err != nil {
				t.Errorf("list %s: %v", bucket, err)
				continue
			}
			for range keys.Keys() {
			}
		}
		// A commit reads its players' live tickets from the leader, the
		// answers on a subscription kept across reads
		// (events.LeaderReader, Players.StaleBatch).
		leader := events.NewLeaderReader(nc)
		for range 2 {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			msgs, lerrs := leader.Lasts(lctx, "KV_players", []string{"$KV.players.k1"})
			cancel()
			if lerrs[0] != nil || msgs[0] == nil || string(msgs[0].Data) != "v" {
				t.Errorf("leader read of players: %+v, %v", msgs[0], lerrs[0])
			}
		}
		leader.Close()
		// Each shard's queue figures: written, never read back.
		queue, err := js.KeyValue(ctx, "queue")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := queue.Put(ctx, "eu.gold.1v1", []byte("v")); err != nil {
			t.Errorf("put queue: %v", err)
		}
		quiet(t, errs)
	})
	t.Run("frontend", func(t *testing.T) {
		nc, errs := as(t, s, "frontend")
		js := testkit.JetStream(t, nc)
		for _, bucket := range []string{"capacity", "queue", "drains"} {
			kv, err := js.KeyValue(t.Context(), bucket)
			if err != nil {
				t.Fatal(err)
			}
			w, err := kv.WatchAll(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-w.Updates(): // nil: the initial values are all delivered
			case <-time.After(2 * time.Second):
				t.Errorf("no watch update of %s", bucket)
			}
			_ = w.Stop()
		}
		players, err := js.KeyValue(t.Context(), "players")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := players.Put(t.Context(), "alice", []byte("v")); err != nil {
			t.Errorf("put players (a new ticket supersedes the player's older one): %v", err)
		}
		// A catch-up reads its players' last results from the leader
		// (results.Tracker, events.LeaderReader).
		leader := events.NewLeaderReader(nc)
		lctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		msgs, lerrs := leader.Lasts(lctx, events.Subjects{}.ResultsStream(), []string{events.Subjects{}.Result("alice")})
		cancel()
		leader.Close()
		if lerrs[0] != nil || msgs[0] != nil {
			t.Errorf("leader read of a player's results (none yet): %+v, %v", msgs[0], lerrs[0])
		}
		// An expiry that meets a match's claim reads whether the match
		// is unsent past its grace and, if so, publishes the ticket again
		// (tickets.Service.Expire). Allowed by what the frontend had
		// already (direct and message gets, the ticket subjects): this
		// keeps a later narrowing from taking it away.
		dec, err := events.NewDecisions(t.Context(), js, events.Subjects{})
		if err != nil {
			t.Fatal(err)
		}
		claims, err := events.NewClaims(t.Context(), js, events.Subjects{})
		if err != nil {
			t.Fatal(err)
		}
		if unsent, err := dec.UnsentPast(t.Context(), claims, "m1", "t1", time.Now()); err != nil || unsent {
			t.Errorf("read whether a match is unsent: %v, %v", unsent, err)
		}
		tk := events.Ticket{TicketID: "t1", PlayerID: "alice", Skill: 1650, Mode: "1v1", CreatedAt: time.Now().UTC()}
		if err := events.NewPublisher(js, events.Subjects{}).TicketForUnsent(t.Context(), "eu", "gold", tk, "", "m1"); err != nil {
			t.Errorf("publish a ticket again for its unsent match: %v", err)
		}
		quiet(t, errs)
	})
	// An operator drains and resumes shards (events.Drains, the CLI).
	t.Run("operator", func(t *testing.T) {
		nc, errs := as(t, s, "operator")
		drains, err := events.NewDrains(t.Context(), testkit.JetStream(t, nc), events.Subjects{})
		if err != nil {
			t.Fatal(err)
		}
		eu := events.Shard{Region: "eu", Tier: "gold"}
		if _, err := drains.Drain(t.Context(), eu, "upgrade", "alice"); err != nil {
			t.Errorf("drain: %v", err)
		}
		if l, err := drains.List(t.Context()); err != nil || len(l) != 1 {
			t.Errorf("list drains: %v, %v", l, err)
		}
		if was, err := drains.Resume(t.Context(), eu); err != nil || !was {
			t.Errorf("resume: %v, %v", was, err)
		}
		quiet(t, errs)
	})
	// The allocator keeps an open room's records: it reads the room's
	// match, copies it to the roommatches bucket and writes the copy again.
	t.Run("allocator", func(t *testing.T) {
		matches, err := op.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "matches"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := op.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "roommatches"}); err != nil {
			t.Fatal(err)
		}
		if _, err := matches.Put(t.Context(), "m1", []byte("match")); err != nil {
			t.Fatal(err)
		}
		nc, errs := as(t, s, "allocator")
		js := testkit.JetStream(t, nc)
		mine, err := js.KeyValue(t.Context(), "matches")
		if err != nil {
			t.Fatal(err)
		}
		m, err := mine.Get(t.Context(), "m1")
		if err != nil {
			t.Fatalf("get a room's match: %v", err)
		}
		rooms, err := js.KeyValue(t.Context(), "roommatches")
		if err != nil {
			t.Fatal(err)
		}
		rev, err := rooms.Create(t.Context(), "m1", m.Value())
		if err != nil {
			t.Fatalf("copy a room's match: %v", err)
		}
		if _, err := rooms.Get(t.Context(), "m1"); err != nil {
			t.Errorf("get a room's copy: %v", err)
		}
		if _, err := rooms.Update(t.Context(), "m1", m.Value(), rev); err != nil {
			t.Errorf("write a room's copy again: %v", err)
		}
		quiet(t, errs)
	})
}

// The provisioner user creates and updates the topology, idempotently, and
// removes an earlier version's intake consumer; it can delete or purge no
// stream and touches no data.
func TestNATSProvisionerProvisionsOnly(t *testing.T) {
	s := startConfigured(t)
	op, _ := as(t, s, "operator")
	opJS := testkit.JetStream(t, op)
	if _, err := opJS.CreateStream(t.Context(), jetstream.StreamConfig{Name: "TICKETS", Subjects: []string{"matchmaking.*.*"},
		Retention: jetstream.WorkQueuePolicy, MaxMsgs: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := opJS.CreateConsumer(t.Context(), "TICKETS", jetstream.ConsumerConfig{Durable: "matcher", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	provisioned(t, s, "provisioner")
	js := provisioned(t, s, "provisioner") // again: nothing to change
	st, err := js.Stream(t.Context(), "TICKETS")
	if err != nil {
		t.Fatal(err)
	}
	if st.CachedInfo().Config.MaxMsgs != -1 {
		t.Errorf("TICKETS keeps max msgs %d", st.CachedInfo().Config.MaxMsgs)
	}
	if _, err := js.Consumer(t.Context(), "TICKETS", "matcher"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the intake consumer of an earlier version: %v", err)
	}
	nc, errs := as(t, s, "provisioner")
	for _, subj := range []string{"$JS.API.STREAM.DELETE.TICKETS", "$JS.API.STREAM.PURGE.RESULTS", "matchmaking.eu.gold", "results.alice", "$KV.claims.t1"} {
		if err := nc.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
		refused(t, errs, "Publish", subj)
	}
	for _, subj := range []string{"results.>", "_INBOX_frontend.x"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		refused(t, errs, "Subscription", subj)
	}
}

// A match function hears its requests and answers the matcher that asked
// (allow_responses), though it may publish nothing of its own.
func TestNATSMatchFunctionAnswersTheMatcher(t *testing.T) {
	s := startConfigured(t)
	fn, errs := as(t, s, "matchfunction")
	sub, err := fn.Subscribe("matchfunctions.mmf", func(m *nats.Msg) { _ = m.Respond([]byte("proposals")) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = fn.Flush()
	matcher, _ := as(t, s, "matcher")
	reply, err := matcher.Request("matchfunctions.mmf", []byte("candidates"), 2*time.Second)
	if err != nil || string(reply.Data) != "proposals" {
		t.Fatalf("the matcher's request: %v, %v", reply, err)
	}
	select {
	case err := <-errs:
		t.Errorf("matchfunction: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}
