package testkit

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LostAck is the future of an async publish whose ack never comes (a cut
// that holds or drops it, the client's async publish timeout not yet run
// out): neither Ok nor Err ever answers.
func LostAck(msg *nats.Msg) jetstream.PubAckFuture { return lostAck{msg} }

type lostAck struct{ msg *nats.Msg }

func (lostAck) Ok() <-chan *jetstream.PubAck { return nil }
func (lostAck) Err() <-chan error            { return nil }
func (a lostAck) Msg() *nats.Msg             { return a.msg }
