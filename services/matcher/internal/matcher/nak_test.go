package matcher

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/events"
	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

func TestAckConsumerReadsBothReplyForms(t *testing.T) {
	t.Parallel()
	for reply, want := range map[string]string{
		"$JS.ACK.TICKETS.tickets-eu-gold.1.42.7.1764662400000000000.3":               "tickets-eu-gold",
		"$JS.ACK._.ACCHASH.TICKETS.tickets-eu-gold.1.42.7.1764662400000000000.3.xyz": "tickets-eu-gold",
		"$JS.ACK.hub.ACCHASH.OFFERS.offers-us-silver.2.9.4.1764662400000000000.0":    "offers-us-silver",
		"$JS.ACK.TICKETS.tickets-eu-gold.1.42":                                       "",
		"_INBOX.abc.def.1.2.3.4.5.6":                                                 "",
		"$JS.ACK.a.b.c.d.e.f.g.h":                                                    "",
	} {
		if got := ackConsumer(reply); got != want {
			t.Errorf("ackConsumer(%q) = %q, want %q", reply, got, want)
		}
	}
}

// TestUnconfirmedNakResetsTheConsumer: the owner cannot claim an expired
// ticket (its connection is held for a moment), nakks it, and the nak is
// lost on the way (as on a consumer with no leader, after a partition
// heals: the client hears of nothing, no heartbeat is missed for long, no
// leader change is reported). The server counts the ticket delivered and
// would give it again only after the pool's AckWait, an hour. The nak was
// not confirmed, so the owner resets the consumer, and the ticket is
// expired and its player told.
func TestUnconfirmedNakResetsTheConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := testkit.NewLink(t, e.srv.Addr().String())
	nc := testkit.ConnectURL(t, p.URL())
	var ahead atomic.Int64
	var lost atomic.Bool
	w := e.shardOwner(t, nc, Config{PublishTimeout: 300 * time.Millisecond,
		RulesFile: modesFile(t, `[{"name":"1v1","teams":2,"team_size":1,"max_wait":"1m"}]`)},
		func(w *Worker) {
			w.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
			w.acks.confirm = func(reply string, body []byte) error {
				if lost.CompareAndSwap(false, true) {
					return nats.ErrTimeout // never sent: lost on the way
				}
				_, err := nc.Request(reply, body, time.Second)
				return err
			}
		})
	told := testkit.Collect(t, e.nc, e.subj.Result("alice"))
	e.pub(t, e.subj.Ticket("eu", "gold"), `{"ticket_id":"a","player_id":"alice","skill":1800}`)
	testkit.Eventually(t, 10*time.Second, func() bool { return w.runner(euGold).waiting() == 1 }, "alice never pooled")

	p.Cut(testkit.Both) // shorter than a silence that would reset the consumer
	ahead.Store(int64(2 * time.Minute))
	testkit.Eventually(t, 10*time.Second, func() bool { return lost.Load() }, "alice never nakked")
	p.Heal()

	testkit.Eventually(t, 15*time.Second, func() bool {
		for _, m := range told() {
			if r, err := events.DecodeResult(m.Data); err == nil && r.Status == events.StatusExpired {
				return true
			}
		}
		return false
	}, "alice never told she expired: her ticket waits out the AckWait")
}
