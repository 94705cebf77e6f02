// Package perf measures what a ticket costs the whole system, so that
// every change to the per-ticket path is measured before and after in one
// run (`make perf`, issue #20).
//
// Method. Each leg starts a fresh local stack (dev/stack: the production
// binaries of `make build` as child processes, NATS embedded in this
// process, as `make run` has it), drives it with the load tool (`load run`
// at a fixed rate for a fixed time, open arrival) over one transport, and
// stops it: by default first over HTTP (POST, then Server-Sent Events to
// the assignment, player identity on with a token per player), then over
// NATS (tickets published on JetStream, outcomes heard on the players'
// result subjects); on request over WebSocket too (a socket per ticket,
// /ws/events, queued and followed on it, a token per player). A fresh
// stack per leg keeps one leg's streams, records and heap out of the
// next one's figures.
//
// Before the load, each process's CPU is read over a few seconds of the
// stack at rest (Config.Idle): heartbeats, leases and sweeps cost that
// whatever the rate, so it weighs more per ticket the lower the rate.
//
// The measured window runs from just before the load tool starts to just
// after it exits, which it does once every ticket has its outcome. Every
// process of the system is read at both ends and every second between
// (more often when the RSS series, Config.RSSEvery, asks; it is taken
// from the same readings) (CPU time, utime+stime of /proc/<pid>/stat in clock ticks of 10 ms;
// resident memory and its peak, VmRSS and VmHWM of /proc/<pid>/status;
// wakes), and its figures are those of a period of the window: from the
// last reading done before the load's first ticket was sent to the first
// begun after its last assignment (the load tool says when each was;
// chargedPeriod). Nearly all the work of every assigned ticket falls
// inside it, and so does the services' idle work (heartbeats, sweeps) for
// its length, but not the seconds before the first ticket (the load tool
// minting its tokens) nor those after the last assignment (a ticket left
// without a partner by a refusal, waiting out the load tool's timeout).
// The embedded NATS server is this process: its figures are this
// process's, which also relays the services' output (little at
// LOG_LEVEL=warn) and reads /proc; its peak is reset at the start of
// each leg (/proc/self/clear_refs). The load tool is measured apart (its
// rusage once it exited) and left out of the total: in a deployment it
// is the players.
//
// CPU per ticket divides each process's CPU seconds in the period by the
// tickets assigned in the leg (not those sent): tickets refused or lost
// cost something too, and the work a studio pays for is a player placed.
//
// A probe (Config.ProbeRate) is a second load tool at a low rate beside
// the load, from its own process and connection: its latency and
// refusals are what a player meets while the load runs. The load tool's
// own figures at high rates include its own waits (thousands of streams
// over a few connections, in one process on the cores it measures), which
// a player's device does not have. Its tickets are charged with the load's.
package perf
