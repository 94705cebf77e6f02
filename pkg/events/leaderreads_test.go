package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestProvisionKeepsDirectGets: Provision leaves every bucket's direct
// gets on, as nats.go made them, so a process that bound a bucket before
// (the pods still running while the provisioning step of an upgrade
// runs) keeps getting answers: nats.go chose direct gets when it bound,
// and a direct get of a stream without them gets no responders. Before,
// Provision turned them off in the workers, leases and claims buckets.
func TestProvisionKeepsDirectGets(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.Connect(t, testkit.RunServer(t)))
	ctx := t.Context()
	topo := events.Topology{Subjects: events.Subjects{Prefix: "kd"}}
	for _, b := range topo.Buckets() {
		if _, err := js.CreateKeyValue(ctx, b); err != nil { // as an earlier version did
			t.Fatal(err)
		}
	}
	claims, err := js.KeyValue(ctx, topo.Subjects.ClaimsBucket()) // bound by a running pod
	if err != nil {
		t.Fatal(err)
	}
	if _, err := claims.Put(ctx, "t1", []byte("expired")); err != nil {
		t.Fatal(err)
	}
	if err := events.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	for _, b := range topo.Buckets() {
		st, err := js.Stream(ctx, "KV_"+b.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		if !st.CachedInfo().Config.AllowDirect {
			t.Errorf("bucket %s: direct gets turned off", b.Bucket)
		}
	}
	if _, err := claims.Get(ctx, "t1"); err != nil {
		t.Errorf("a claim read by a process bound before the provisioning: %v", err)
	}
}

// TestClaimsReadFromTheLeader: a claim found taken is read to learn its
// owner, and that read is a message get, which only the stream leader
// answers, never a direct get, which any replica answers however far
// behind (one that has not seen the owner give the claim back). (A
// create that fails still makes a direct get of its own in nats.go, to
// learn whether the key was deleted; a stale answer there only fails the
// create, and the owner is then read from the leader.)
func TestClaimsReadFromTheLeader(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	ctx := t.Context()
	subj := events.Subjects{Prefix: "cl"}
	if err := events.Provision(ctx, js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	// One subscription: its messages come in the order they were sent.
	api := testkit.Collect(t, nc, "$JS.API.>")
	stream := "KV_" + subj.ClaimsBucket()
	leaderReads := func(from int) (n, direct int) {
		for _, m := range api()[from:] {
			switch {
			case strings.HasPrefix(m.Subject, "$JS.API.STREAM.MSG.GET."+stream):
				n++
			case strings.HasPrefix(m.Subject, "$JS.API.DIRECT.GET."+stream):
				direct++
			}
		}
		return n, direct
	}
	c, err := events.NewClaims(ctx, js, subj)
	if err != nil {
		t.Fatal(err)
	}
	if won, _, err := c.Claim(ctx, "t1", events.OwnerExpired); err != nil || !won {
		t.Fatalf("first claim: won %v, %v", won, err)
	}
	won, owner, err := c.Claim(ctx, "t1", events.OwnerCancelled)
	if err != nil || won || owner != events.OwnerExpired {
		t.Fatalf("second claim: won %v, owner %q, %v; want the claim expired's", won, owner, err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { n, _ := leaderReads(0); return n > 0 },
		"the owner of a claim found taken not read from the leader")
	from := len(api())
	if owner, err := c.Owner(ctx, "t1"); err != nil || owner != events.OwnerExpired {
		t.Fatalf("owner %q, %v", owner, err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { n, _ := leaderReads(from); return n > 0 },
		"a claim's owner not read from the leader")
	if _, direct := leaderReads(from); direct > 0 {
		t.Errorf("a claim's owner read with a direct get")
	}
}

// TestDecisionsReadFromTheLeader: a match's decision is read from the
// stream leader. One not found is made (a match decided twice, or sent
// twice, if a replica behind a heal answered), so a replica must never
// answer it.
func TestDecisionsReadFromTheLeader(t *testing.T) {
	t.Parallel()
	nc := testkit.Connect(t, testkit.RunServer(t))
	js := testkit.JetStream(t, nc)
	ctx := t.Context()
	subj := events.Subjects{Prefix: "dl"}
	if err := events.Provision(ctx, js, events.Topology{Subjects: subj}); err != nil {
		t.Fatal(err)
	}
	api := testkit.Collect(t, nc, "$JS.API.>")
	stream := "KV_" + subj.MatchesBucket()
	d, err := events.NewDecisions(ctx, js, subj)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decided(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		for _, m := range api() {
			if strings.HasPrefix(m.Subject, "$JS.API.STREAM.MSG.GET."+stream) {
				return true
			}
		}
		return false
	}, "a match's decision not read from the leader")
	for _, m := range api() {
		if strings.HasPrefix(m.Subject, "$JS.API.DIRECT.GET."+stream) {
			t.Fatalf("a match's decision read with a direct get: %s", m.Subject)
		}
	}
}
