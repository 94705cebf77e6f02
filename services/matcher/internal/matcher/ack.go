package matcher

import "github.com/nats-io/nats.go"

// ackReply is the body of a JetStream acknowledgement. The pools keep a
// ticket's reply subject, not its message, so the matcher answers by
// publishing one of these to that subject (as jetstream.Msg's Ack, Nak
// and Term do; their bodies are not exported).
type ackReply string

const (
	// ackDone: the message is handled; it is not delivered again.
	ackDone ackReply = "+ACK"
	// nakSecond asks for redelivery after a second (the delay is in
	// nanoseconds), so a ticket that cannot be ended now (NATS away) does
	// not spin.
	nakSecond ackReply = `-NAK {"delay": 1000000000}`
	// termForGood ends a message for good: it is never redelivered.
	termForGood ackReply = "+TERM"
)

// acker answers JetStream messages by their reply subject.
type acker struct{ nc *nats.Conn }

func (a acker) send(reply string, r ackReply) { _ = a.nc.Publish(reply, []byte(r)) }

func (a acker) ack(reply string)  { a.send(reply, ackDone) }
func (a acker) nak(reply string)  { a.send(reply, nakSecond) }
func (a acker) term(reply string) { a.send(reply, termForGood) }

// flush sends the answers still buffered (before a shard is handed over).
func (a acker) flush() { _ = a.nc.Flush() }
