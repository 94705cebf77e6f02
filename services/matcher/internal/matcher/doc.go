// Package matcher is a matcher worker: it takes tickets in, owns some
// shards, and forms matches in the shards it owns.
//
// Shards: each shard (region and tier) has its own durable consumer on its
// subject of the tickets stream, and only the worker holding the shard's
// lease consumes it (package shard decides who). So every ticket of a
// shard meets every other ticket of that shard however many workers run,
// in one hop from the publisher, and shards move when workers come and go.
// The owner validates each ticket as it arrives, against the rule set
// (pkg/rules: the frontend refuses by the same Check), and dead-letters
// what is bad (telling the players why when it can name them). A second
// consumer per shard, on the OFFERS stream, brings it visitors: tickets
// another region's shard of its tier offers once their latency budget
// reaches this region, and tickets a neighbouring tier's shard of its
// region offers once their skill window crosses the bound between the
// tiers (so that 1199 and 1200 meet). A visitor is a copy: its home shard
// keeps the ticket, and the claims keep it in at most one match wherever
// its copies wait.
// Tickets on a subject no shard consumes are dead-lettered by a sweep
// every worker runs (strays).
//
// Concurrency: one goroutine per owned shard (runner.run) holds that
// shard's pools and does all its matching; the consume callback and the
// cancel subscription only hand it messages over channels. Nothing in a
// shard is shared, so shards match in parallel without locks.
//
// One live ticket per player: before a shard pools a ticket it takes it
// in as the live ticket of its players (events.Players, the players
// bucket), which supersedes the player's earlier undecided ticket in any
// region, tier or mode, through that ticket's claim. A ticket whose id
// is already another ticket's, of other players (a publisher reusing an
// id), is dead-lettered instead (events.ErrTicketIDTaken): the claim it
// would share is the other ticket's. A pool never matches
// one player twice either (a visitor copy may meet its player's newer
// ticket before the notice that drops it arrives).
//
// Outcomes: a waiting ticket stays unacked in its shard's pool; it is acked
// only after what ends it is stored and claimed (events.Claims): a match on
// the allocations stream, an expiry or supersession result, a dead letter.
// A worker that dies leaves its tickets unacked; the worker that takes the
// shard over resets the consumer, which redelivers them at once.
//
// Parts: a Worker (worker.go; its Config in config.go, its metrics in
// metrics.go) binds the buckets, owns shards through package shard,
// reloads the rule set file and routes cancel notices to all its runners
// and matched notices to those that may hold a copy of the ticket (a
// visitor, or a ticket offered across a tier bound); its intake
// (intake.go) decodes, checks, takes in and dead-letters ticket messages,
// for the shards and for the stray sweep (strays.go). A runner
// (runner.go) owns one shard's pools on one goroutine, fed by its three
// consumers (consume.go: reset after a leader change or a reconnect, and
// drained and nakked when the runner stops): it puts a reloaded
// rule set in force in its pools (reload.go), takes tickets in
// (admit.go), drops the copies of tickets matched elsewhere once their
// claims name the match a matched notice names (copies.go; what a runner
// remembers a while, in recent.go), forms matches and takes their
// commits' outcomes back (match.go), offers tickets to other regions and neighbouring tiers
// (offer.go; its queue by due time in offerqueue.go), ends expired ones
// (end.go) and fills running rooms' backfill requests from its pools (backfill.go); it counts matched waits
// and writes its shard's queue figures (stats.go); for a mode that names a
// match function it asks that function for the mode's matches and commits
// the proposals that pass its checks (function.go). A commit (commit.go,
// batch.go) claims, checks, decides and publishes off that goroutine the
// matches formed in one turn of the runner's loop, as one batch whose
// every phase's writes go out together; its spans (spans.go) follow each
// ticket's wait and each match's commit (pkg/tracing); a recoverer
// (recover.go) settles a match another matcher left behind its claims.
// Both decide and follow a match with the same buckets (matchState, in
// commit.go) and undo a match decided undone alike (undo.go); both send
// a match decided published once (sendOnce: its "sent" marker, not the
// streams' duplicate window, keeps a copy met long after from sending it
// again); a match decided published that a runner could not send before
// it handed its shard back goes to the worker's outbox (outbox.go), which
// sends it once NATS answers, whether or not its tickets come back to
// anyone (a frontend's expiry leads the owner to one no worker keeps:
// events.Publisher.TicketForUnsent). Pooled tickets are answered by
// their reply subject (ack.go). Each part holds the clients and settings
// it uses, handed to it when it is made: the
// intake and the matchState are the worker's (the intake made with it and
// given the buckets when it binds them, the matchState made then) and
// shared by all its runners; the other parts are made with each runner.
// Every part reads the worker's one clock (Worker.clock).
package matcher
