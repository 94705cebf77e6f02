// Package events is the contract between the quickmatch services: every NATS
// subject, JetStream stream, consumer and key-value bucket, and every payload
// that crosses the wire, is declared here and nowhere else.
//
// Subjects (with an optional deployment prefix, see [Subjects]):
//
//	matchmaking.<region>.<tier>   tickets, JSON [Ticket], stream TICKETS
//	allocations.<region>          match allocation requests, JSON [Match], stream ALLOCATIONS
//	results.<player_id>           per-player outcomes, JSON [Result], stream RESULTS
//	deadletter.<source>           rejected input with a reason, JSON [DeadLetter], stream DEADLETTER
//
// Payloads are JSON so that a person can type a ticket into `nats pub`.
// Decoders are strict: unknown fields, wrong types and impossible values are
// rejected with a [ValidationError] that names the offending field.
//
// Streams, consumers and buckets are created by [Provision], once, at the
// start of a service. Subscribers only bind to them: a subscriber that
// creates its own consumer also deletes it when it closes (see the
// watermill-nats notes), which silently starves every other instance.
package events
