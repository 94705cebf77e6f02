package matcher

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackReply is the body of a JetStream acknowledgement. The pools keep a
// ticket's reply subject, not its message, so the matcher answers by
// publishing one of these to that subject (as jetstream.Msg's Ack, Nak
// and Term do; their bodies are not exported).
type ackReply string

const (
	// ackDone: the message is handled; it is not delivered again.
	ackDone ackReply = "+ACK"
	// nakNow asks for redelivery at once; a runner keeping its shard
	// waits nakDelay before it sends one (acker.nak, nakLater), one
	// handing it over does not (handBack, nakInbox, feed.handle).
	nakNow ackReply = "-NAK"
	// termForGood ends a message for good: it is never redelivered.
	termForGood ackReply = "+TERM"
)

// nakDelay is how long a ticket handed back waits before it is asked for
// again, so that one that cannot be ended now (NATS away) does not spin.
// The matcher waits it out itself, then naks with no delay: a nak with a
// delay is a proposal of the consumer's Raft group (the message's new
// delivery time), and one that lands between a reset's proposal and its
// commit loses tickets as a delivery there does (feed;
// TestAResetAmidDeliveriesLosesNoTicket). A plain nak proposes nothing.
// Nor may any matcher code call InProgress or NakWithDelay, which propose
// the same (TestNoAnswerMovesTheDeliveredPosition). Meanwhile the message
// stays delivered to this owner: a reset or the next owner's start gives
// it again if the nak never goes. A nak that reaches the server after a
// reset counts against the message's new delivery (the server checks
// the delivery sequence's range, which a reset starts again, and not
// which delivery it was): one delivery more, which holds answers.
const nakDelay = time.Second

// nakConfirmWait bounds the wait for the consumer's leader to confirm a
// nak: far above a healthy round trip, and well inside the pool's
// AckWait, which a lost nak would otherwise leave its ticket to wait out.
const nakConfirmWait = 2 * time.Second

// acker answers JetStream messages by their reply subject.
//
// A nak is the one answer whose loss strands a ticket: the server counts
// the message delivered and gives it again only after the pool's AckWait
// (an hour), and the runner that nakked it waits for it to come back (a
// lost ack or term costs a late redelivery, which its claim settles).
// Naks go out blind on a consumer with no leader (one being elected after
// a partition heals), and the client hears of nothing. So a runner's
// naks are sent as requests: the consumer's leader answers each, and one
// it did not answer in nakConfirmWait is reported to lost, which resets
// the consumer (feed.nakLost): a reset gives every unacked ticket again.
type acker struct {
	nc *nats.Conn
	// lost, when set, hears of each nak no consumer leader confirmed.
	lost func(reply string)
	// confirm sends a nak and waits for its confirmation; nil: a
	// request on nc. A test loses some.
	confirm func(reply string, body []byte) error
}

func (a acker) send(reply string, r ackReply) { _ = a.nc.Publish(reply, []byte(r)) }

func (a acker) ack(reply string)  { a.send(reply, ackDone) }
func (a acker) term(reply string) { a.send(reply, termForGood) }

// nak asks for the message again, nakDelay from now; see acker for why
// it waits, aside, for the confirmation.
func (a acker) nak(reply string) {
	time.AfterFunc(nakDelay, func() {
		if a.lost == nil {
			a.send(reply, nakNow)
			return
		}
		confirm := a.confirm
		if confirm == nil {
			confirm = func(reply string, body []byte) error {
				_, err := a.nc.Request(reply, body, nakConfirmWait)
				return err
			}
		}
		if err := confirm(reply, []byte(nakNow)); err != nil {
			a.lost(reply)
		}
	})
}

// handBack naks a message at once, unconfirmed: what a stopping runner
// holds goes to the shard's next owner, whose start resets the consumer
// and gives it again in any case (a plain nak proposes nothing, nakDelay).
// A nak sent nakDelay later would most often never go (the worker exits)
// or, confirmed on a closed connection, log a reset of a stopped feed.
func (a acker) handBack(reply string) { a.send(reply, nakNow) }

// nakLater naks msg (a delivery the runner does not keep) d from now,
// with no delay of the server's (nakDelay says why).
func nakLater(msg jetstream.Msg, d time.Duration) {
	time.AfterFunc(d, func() { _ = msg.Nak() })
}

// flush sends the answers still buffered (before a shard is handed
// over), waiting flushWait at most for the server's word that they came:
// nats.go's own wait, 10 s, held a stopping matcher's hand-back that
// long on a cut connection, past its pod's grace, and a nak that does
// not go is given again by the next owner's reset all the same.
func (a acker) flush() { _ = a.nc.FlushTimeout(flushWait) }

// flushWait bounds flush.
const flushWait = time.Second

// nakLost marks suspect the consumer of a nak its leader did not
// confirm (acker): the nak may be lost, and its ticket would wait out the
// pool's AckWait; the reset gives it again.
func (f *feed) nakLost(reply string) {
	name := ackConsumer(reply)
	for i, sp := range f.specs {
		if sp.name == name {
			f.log.Warn("a nak was not confirmed; resetting the consumer", "consumer", name)
			f.flag(1 << i)
			return
		}
	}
}

// ackConsumer is the consumer a JetStream reply subject answers:
// $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
// seq>.<time>.<pending>, or with a domain and an account hash after ACK
// (and maybe a last token) in the newer form, as nats.go parses them;
// "" if reply is neither.
func ackConsumer(reply string) string {
	t := strings.Split(reply, ".")
	switch {
	case len(t) < 9 || t[0] != "$JS" || t[1] != "ACK":
		return ""
	case len(t) == 9:
		return t[3]
	case len(t) == 11 || len(t) == 12:
		return t[5]
	}
	return ""
}
