// Package events is the contract between the quickmatch services: every NATS
// subject, JetStream stream, consumer and key-value bucket, and every payload
// that crosses the wire between them, is declared here and nowhere else.
// Two contracts live beside it because others than our services speak
// them: the rule set (pkg/rules, a file studios write) and the match
// function's request and reply (pkg/matchfn, a service studios write).
//
// Subjects (with an optional deployment prefix, see [Subjects]):
//
//	matchmaking.<region>.<tier>   tickets, JSON [Ticket], stream TICKETS
//	offers.<region>.<tier>        visitors: tickets offered to another shard (another region's, or a neighbouring tier's), JSON [Ticket], stream OFFERS
//	backfills.<region>.<tier>     running rooms' requests for players, JSON [Backfill], stream BACKFILLS
//	matchfunctions.<service>      requests to a mode's match function (pkg/matchfn), core NATS request/reply
//	allocations.<region>          match allocation requests, JSON [Match], stream ALLOCATIONS
//	results.<player_id>           per-player outcomes, JSON [Result], stream RESULTS
//	deadletter.<source>           rejected input with a reason, JSON [DeadLetter], stream DEADLETTER
//	cancels.<region>.<tier>       cancel notices, JSON [Cancel], core NATS (no stream)
//
// A region and a tier make a [Shard], the unit of matching: one matcher
// worker at a time owns a shard and holds its waiting tickets and visitors
// in its pool.
//
// Payloads are JSON so that a person can type a ticket into `nats pub`.
// Decoders are strict: unknown fields, wrong types and impossible values are
// rejected with a [ValidationError] that names the offending field.
//
// Streams, consumers and buckets are declared by [Topology] and created by
// [Provision] in a provisioning step of its own (a service run with
// -provision), once per install and upgrade; it compares whole declared
// configurations with the live ones and updates only what drifted.
// Services create none of them: they wait until the topology exists, then
// only bind to it. A subscriber that creates its own consumer also deletes
// it when it closes (as watermill-nats' did, which the allocators once
// used), which silently starves every other instance.
package events
