// Package admission is the frontend's overload control: it bounds how many
// ticket creations run at once, and moves that bound with the latency the
// creations show, so that past the system's capacity the excess is refused
// at once (503 "overloaded") instead of queueing.
//
// What it measures is what the frontend sees: a creation is in flight from
// its admission to its answer, and almost all of that time is spent waiting
// for JetStream and KV acks (the ticket's record and its publish, written
// together, and the take); it is admitted before its token is verified
// (the API's admit.go), so that a refusal costs no signature check, and
// a frontend whose own CPU is the bottleneck sees it in the latency too.
// Under load those waits are where the
// queue is: the NATS server, the matchers and the allocator share the same
// cores, and when they fall behind every ack comes later. Left alone, the
// frontend takes every request, the creations in flight grow without
// bound, and every player waits (Little's law: at a fixed throughput,
// latency grows with what is in flight; issue #20 saw 13.5 s just to
// answer a POST at twice the capacity). Bounding what is in flight bounds
// the latency, and refusing the rest costs almost nothing.
//
// The bound (the limit) is adaptive, in the spirit of TCP's AIMD and of
// Netflix's concurrency-limits: the latency of the creations that end in a
// window (Config.Window, and at least minSamples of them) is averaged, then
//   - above Config.Target, the limit is cut by target/mean (the same law:
//     at the same throughput that brings the latency back to the target in
//     one step), by at least a tenth and at most a half;
//   - at or under it, if the window used at least half of the limit, the
//     limit grows by its square root: a few seconds from the floor to
//     hundreds, and gentler the higher it is; a limit nobody uses does not
//     grow, so it stays near what the traffic needs.
//
// The limit stays within [Config.Min, Config.Max]: the floor keeps a
// slow deployment (a latency above the target at any load) serving
// something, the ceiling bounds the burst a fresh frontend admits before
// its first measurement.
//
// A request over the limit is refused at once, never queued behind it: a
// wait would hold the refused client's connection and goroutine, which is
// the collapse this avoids. Its Retry-After grows with the refusals per
// admission (Limiter.RetryAfter), so that clients that ask again come
// back no faster than they can be taken. A repeat its client says may
// hold a ticket already (ticketapi.HeaderRepeat) is served in a few
// repeat slots of its own (Limiter.AcquireRepeat) instead, answered from
// that ticket. Only creations that reached the broker are
// measured (Slot.Done's measured): a request refused by validation, by
// capacity, or for a bad token ends in microseconds, and a flood of them
// would otherwise make the latency look low and the limit grow.
//
// Concurrency: one mutex guards the whole state; every operation under it
// is a few arithmetic steps, no I/O and no allocation, so it is held for
// nanoseconds even at tens of thousands of creations a second.
package admission
