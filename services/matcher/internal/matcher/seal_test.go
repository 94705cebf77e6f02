package matcher

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/rules"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// sealKeys writes a seal key file of key and returns its path and seals.
func sealKeys(t *testing.T, key []byte) (string, *events.Seals) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "seal.keys")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := events.LoadSeals(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, s
}

// takeFirst does what a frontend does before it queues a ticket: the
// ticket made its player's live ticket (events.Players.TakeFirst).
func (e *env) takeFirst(t *testing.T, tk events.Ticket, region, tier string) {
	t.Helper()
	players, err := events.NewPlayers(t.Context(), e.js, e.subj, e.claims(t))
	if err != nil {
		t.Fatal(err)
	}
	lt := events.LiveTicket{TicketID: tk.TicketID, Players: tk.Players(), Region: region, Tier: tier, Mode: tk.Mode, CreatedAt: tk.CreatedAt}
	nobody := func(context.Context, events.LiveTicket, string) error { return nil }
	if got, err := players.TakeFirst(t.Context(), lt, nobody); err != nil || !got.Live {
		t.Fatalf("take %s first: %+v, %v", tk.TicketID, got, err)
	}
}

// pubSealed publishes ticket tk on its shard's subject with the seal of
// seals (none if nil).
func (e *env) pubSealed(t *testing.T, region, tier string, tk events.Ticket, seals *events.Seals) {
	t.Helper()
	msg, err := events.TicketMsg(t.Context(), e.subj, region, tier, tk, "")
	if err != nil {
		t.Fatal(err)
	}
	if seals != nil {
		msg.Header.Set(events.HeaderTaken, seals.Seal(msg.Subject, msg.Data))
	}
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
}

// trustLonger trusts a seal for a minute after its storing, not
// sealFresh: under a loaded test run a first delivery may come seconds
// late, and a test of the trusted path would find the ticket read.
func trustLonger(w *Worker) { w.in.fresh = time.Minute }

// consuming waits until w consumes shard eu.gold's tickets: its first
// reset is done, so that a ticket published after is above its seal
// floor (feed.sealFloor).
func (h *worker) consuming(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool {
		h.w.mu.Lock()
		r := h.w.runners[events.Shard{Region: "eu", Tier: "gold"}]
		h.w.mu.Unlock()
		return r != nil && r.feed.resets[0].Load() >= 1
	}, "shard eu.gold not consumed")
}

// playerReads counts the reads of player's entry among msgs (the
// JetStream API requests a testkit.Collect of ">" saw).
func playerReads(msgs []*nats.Msg, subj events.Subjects, player string) (n int) {
	key := []byte(`"$KV.` + subj.PlayersBucket() + "." + player + `"`)
	for _, m := range msgs {
		if strings.HasPrefix(m.Subject, "$JS.API.") && bytes.Contains(m.Data, key) {
			n++
		}
	}
	return n
}

// TestSealedTicketIsTakenInWithoutARead: a ticket its frontend took
// first and sealed with the matchers' key is pooled without a read of
// its player's entry, and matched. One whose seal is under another key
// (a NATS publisher without the key copying the header, or forging one)
// is taken in as every unsealed ticket is: read, and its player's entry
// written.
func TestSealedTicketIsTakenInWithoutARead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file, seals := sealKeys(t, bytes.Repeat([]byte{7}, events.MinSealKey))
	_, forged := sealKeys(t, bytes.Repeat([]byte{8}, events.MinSealKey))
	w := e.startWorker(t, Config{SealKeyFile: file}, trustLonger)
	w.consuming(t)
	see := testkit.Collect(t, e.nc, ">")
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())

	ann := events.Ticket{TicketID: "ann-1", PlayerID: "ann", Skill: 1800, Mode: "1v1", CreatedAt: time.Now().UTC()}
	e.takeFirst(t, ann, "eu", "gold")
	e.pubSealed(t, "eu", "gold", ann, seals)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "the sealed ticket was not pooled")
	if n := playerReads(testkit.Seen(t, e.nc, see), e.subj, "ann"); n != 0 {
		t.Fatalf("the sealed ticket's player was read %d times, want 0", n)
	}
	// A party's: none of its players read either.
	party := events.Ticket{TicketID: "dan-eve", Party: []string{"dan", "eve"}, Skill: 1800, Mode: "2v2", CreatedAt: time.Now().UTC()}
	e.takeFirst(t, party, "eu", "gold")
	e.pubSealed(t, "eu", "gold", party, seals)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 2 }, "the sealed party was not pooled")
	seenNow := testkit.Seen(t, e.nc, see)
	if n := playerReads(seenNow, e.subj, "dan") + playerReads(seenNow, e.subj, "eve"); n != 0 {
		t.Fatalf("the sealed party's players were read %d times, want 0", n)
	}

	bob := events.Ticket{TicketID: "bob-1", PlayerID: "bob", Skill: 1800, Mode: "1v1", CreatedAt: time.Now().UTC()}
	e.pubSealed(t, "eu", "gold", bob, forged)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(allocs()) == 1 }, "no match")
	m := matches(t, allocs())[0]
	if ids := []string{m.Tickets[0].TicketID, m.Tickets[1].TicketID}; !slices.Contains(ids, "ann-1") || !slices.Contains(ids, "bob-1") {
		t.Fatalf("match %+v, want ann-1 and bob-1", m)
	}
	players, err := events.NewPlayers(t.Context(), e.js, e.subj, e.claims(t))
	if err != nil {
		t.Fatal(err)
	}
	if live, err := players.Live(t.Context(), "bob"); err != nil || live != "bob-1" {
		t.Fatalf("bob's live ticket %q (%v): a forged seal was trusted, want bob-1 taken in", live, err)
	}
	counted := w.w.met.seals
	if tr, un := testutil.ToFloat64(counted.WithLabelValues("trusted")), testutil.ToFloat64(counted.WithLabelValues("unverified")); tr != 2 || un != 1 {
		t.Errorf("seals counted trusted %v, unverified %v; want 2 and 1", tr, un)
	}
}

// TestOldSealIsRead: a sealed ticket that reaches its shard's owner more
// than sealFresh after JetStream stored it (a backlog, a redelivery, a
// consumer reset after its shard moved: its player may have queued again
// since) is read as an unsealed one is (review R9, M3).
func TestOldSealIsRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file, seals := sealKeys(t, bytes.Repeat([]byte{7}, events.MinSealKey))
	ahead := func(w *Worker) { w.now = func() time.Time { return time.Now().Add(2 * sealFresh) } }
	w := e.startWorker(t, Config{SealKeyFile: file}, ahead)
	w.consuming(t)
	see := testkit.Collect(t, e.nc, ">")
	ann := events.Ticket{TicketID: "ann-1", PlayerID: "ann", Skill: 1800, Mode: "1v1", CreatedAt: time.Now().UTC()}
	e.takeFirst(t, ann, "eu", "gold")
	e.pubSealed(t, "eu", "gold", ann, seals)
	// At least one: on the worker's clock the ticket has waited
	// 2*sealFresh, so its skill window may cross its tier's bounds and
	// the neighbouring shards, the worker's too, pool a copy.
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() >= 1 }, "the ticket was not pooled")
	if n := playerReads(testkit.Seen(t, e.nc, see), e.subj, "ann"); n == 0 {
		t.Fatal("an old seal was trusted: the ticket's player was not read")
	}
	if old := testutil.ToFloat64(w.w.met.seals.WithLabelValues("old")); old != 1 {
		t.Errorf("seals counted old %v, want 1", old)
	}
}

// TestSealedTicketSupersededBeforeItCameIsNotMatched: a sealed ticket
// whose player queued again before it reached its shard (its entry names
// the newer ticket, which claimed it superseded) is pooled unread, and
// never matched: the commit loses its claim. A guard: the take-in read
// dropped such a ticket before; the seal leaves it to the commit.
func TestSealedTicketSupersededBeforeItCameIsNotMatched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file, seals := sealKeys(t, bytes.Repeat([]byte{7}, events.MinSealKey))
	w := e.startWorker(t, Config{SealKeyFile: file}, trustLonger)
	w.consuming(t)
	allocs := testkit.Collect(t, e.nc, e.subj.AllAllocations())

	t0 := time.Now().UTC()
	old := events.Ticket{TicketID: "ann-old", PlayerID: "ann", Skill: 1800, Mode: "1v1", CreatedAt: t0}
	e.takeFirst(t, old, "eu", "gold")
	players, err := events.NewPlayers(t.Context(), e.js, e.subj, e.claims(t))
	if err != nil {
		t.Fatal(err)
	}
	newer := events.LiveTicket{TicketID: "ann-new", Players: []string{"ann"}, Region: "us", Tier: "gold", Mode: "1v1", CreatedAt: t0.Add(time.Second)}
	nobody := func(context.Context, events.LiveTicket, string) error { return nil }
	if got, err := players.Take(t.Context(), newer, nobody); err != nil || len(got.Superseded) != 1 {
		t.Fatalf("the newer ticket: %+v, %v", got, err)
	}
	e.pubSealed(t, "eu", "gold", old, seals)
	e.pub(t, "matchmaking.eu.gold", `{"ticket_id":"cid-1","player_id":"cid","skill":1800}`)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() >= 1 }, "nothing pooled")
	time.Sleep(time.Second) // room for a wrong match
	for _, m := range matches(t, allocs()) {
		for _, tk := range m.Tickets {
			if tk.TicketID == "ann-old" {
				t.Fatalf("the superseded ticket was matched: %+v", m)
			}
		}
	}
	owner, err := e.claims(t).Owner(t.Context(), "ann-old")
	if err != nil || owner != events.OwnerSuperseded {
		t.Fatalf("ann-old's claim %q (%v), want superseded", owner, err)
	}
}

// A trusted seal leaves a ticket's players' entries as its take first
// wrote them, and Stale counts a player with no entry as live: so a
// sealed ticket must never be pooled past its entries' life. It is
// trusted within sealFresh of being stored and waits at most its mode's
// max wait, which no rule set may set above events.TicketMaxAge; the
// entries live events.RecordTTL from that write (review R9, L1).
func TestSealedTicketsNeverOutliveTheirEntries(t *testing.T) {
	t.Parallel()
	if events.RecordTTL <= events.TicketMaxAge+sealFresh {
		t.Fatalf("players' entries live %s, a sealed ticket up to %s", events.RecordTTL, events.TicketMaxAge+sealFresh)
	}
	longer := fmt.Sprintf(`{"modes":[{"name":"1v1","teams":2,"team_size":1,"max_wait":%q}]}`, (events.TicketMaxAge + time.Second).String())
	if _, err := rules.Parse([]byte(longer)); err == nil {
		t.Fatalf("a rule set with a max wait above %s was accepted", events.TicketMaxAge)
	}
}

// TestSealStoredBeforeAResetIsRead: a sealed ticket stored before its
// shard's owner reset the shard's consumer (a start, a takeover: a
// previous owner may have had it, and its player queued again since)
// comes back as a first delivery, within seconds, and is read all the
// same (review R10).
func TestSealStoredBeforeAResetIsRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file, seals := sealKeys(t, bytes.Repeat([]byte{7}, events.MinSealKey))
	see := testkit.Collect(t, e.nc, ">")
	ann := events.Ticket{TicketID: "ann-1", PlayerID: "ann", Skill: 1800, Mode: "1v1", CreatedAt: time.Now().UTC()}
	e.takeFirst(t, ann, "eu", "gold")
	e.pubSealed(t, "eu", "gold", ann, seals)
	w := e.startWorker(t, Config{SealKeyFile: file}, trustLonger)
	testkit.Eventually(t, 5*time.Second, func() bool { return w.waiting() == 1 }, "the ticket was not pooled")
	if n := playerReads(testkit.Seen(t, e.nc, see), e.subj, "ann"); n == 0 {
		t.Fatal("a seal stored before the consumer's reset was trusted: the ticket's player was not read")
	}
}
