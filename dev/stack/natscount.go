package stack

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSCounts are the embedded NATS server's running totals: what a load
// run's two readings subtract to count the messages a ticket costs.
type NATSCounts struct {
	// In and Out are the messages the server received and delivered, as
	// its /varz counts them: on client, route and leaf connections (a
	// message its own JetStream publishes internally is not "in").
	In, Out uint64
	// API is the JetStream API requests the server took in (stream and
	// consumer calls, message gets: the leader reads of pkg/events among
	// them), counted where they arrive, the system account's $JS.API.>
	// subscription (APIRequests). Direct gets and pull requests go to
	// the streams' and consumers' own subscriptions and are not counted.
	API uint64
	// Subscribed is the subscriptions made (every account's sublist
	// inserts, the server's own included): a client that subscribes per
	// request shows here, and each wildcard subscription walks the
	// server's cache of subjects (BENCHMARKS.md, "Eighth round").
	Subscribed uint64
	// Stored is, by stream, the last sequence: a stream's messages
	// written so far (KV puts, deletes and purges are messages too).
	Stored map[string]uint64
	// Keys is, by stream, the subjects holding a message now (a KV
	// bucket's live keys and delete markers): what the server keeps an
	// index entry for in memory until the message goes (BENCHMARKS.md,
	// "Eleventh round": about 1.1 KiB a ticket, with a ticket's keys).
	Keys map[string]uint64
	// ByClient is, by connection name (the services name theirs; "" for
	// the unnamed), what client connections sent the server (In) and
	// were sent (Out), closed connections the server still lists
	// included.
	ByClient map[string]InOut
}

// InOut are messages into and out of the server on some connections.
type InOut struct{ In, Out uint64 }

// NATSCounts reads the embedded server's totals (Varz, Jsz).
func (s *Stack) NATSCounts() (NATSCounts, error) {
	v, err := s.nats.Varz(nil)
	if err != nil {
		return NATSCounts{}, fmt.Errorf("nats varz: %w", err)
	}
	js, err := s.nats.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return NATSCounts{}, fmt.Errorf("nats jsz: %w", err)
	}
	// Every connection, open or closed, so that one that ended in the
	// window keeps its count (the server lists the last 10,000 closed).
	conns, err := s.nats.Connz(&server.ConnzOptions{State: server.ConnAll, Limit: 1 << 20})
	if err != nil {
		return NATSCounts{}, fmt.Errorf("nats connz: %w", err)
	}
	subs, err := s.nats.Subsz(nil)
	if err != nil {
		return NATSCounts{}, fmt.Errorf("nats subsz: %w", err)
	}
	api, err := APIRequests(s.nats)
	if err != nil {
		return NATSCounts{}, err
	}
	c := NATSCounts{In: uint64(v.InMsgs), Out: uint64(v.OutMsgs), API: api, Subscribed: subs.NumInserts,
		Stored: map[string]uint64{}, Keys: map[string]uint64{}, ByClient: map[string]InOut{}}
	for _, a := range js.AccountDetails {
		for _, st := range a.Streams {
			c.Stored[st.Name] += st.State.LastSeq
			c.Keys[st.Name] += uint64(st.State.NumSubjects)
		}
	}
	for _, ci := range conns.Conns {
		io := c.ByClient[ci.Name]
		io.In += uint64(ci.InMsgs)
		io.Out += uint64(ci.OutMsgs)
		c.ByClient[ci.Name] = io
	}
	return c, nil
}

// APIRequests is how many JetStream API requests s took in: the messages
// its system account's $JS.API.> subscription received, which every
// account's requests to the API layer reach. Direct gets
// ($JS.API.DIRECT.GET) and pull requests ($JS.API.CONSUMER.MSG.NEXT) go
// to the streams' and consumers' own subscriptions and are not counted.
// The server's own API total (/jsz api.total) counts the answers its API
// layer sends, and a message get that finds its message answers past
// that layer: a leader read of a key that exists is not in it
// (BENCHMARKS.md, #20's ninth round).
func APIRequests(s *server.Server) (uint64, error) {
	sys := s.SystemAccount()
	if sys == nil {
		return 0, fmt.Errorf("nats: no system account")
	}
	sz, err := s.Subsz(&server.SubszOptions{Subscriptions: true, Account: sys.Name, Test: "$JS.API.INFO", Limit: 1 << 20})
	if err != nil {
		return 0, fmt.Errorf("nats subsz: %w", err)
	}
	var n uint64
	for _, d := range sz.Subs {
		if d.Subject == "$JS.API.>" {
			n += uint64(d.Msgs)
		}
	}
	return n, nil
}
