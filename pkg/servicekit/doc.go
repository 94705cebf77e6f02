// Package servicekit holds the plumbing every quickmatch service shares, in
// sub-packages named for what they do: envflag (flags with environment
// fallbacks), natsconn (connecting to NATS), logging (slog set-up), ops
// (the health, readiness and metrics server, and Listen, which reports the
// address a listener got), service (a service's start-up: logger, NATS,
// the provisioned topology, retried with backoff until NATS answers, and
// Main) and identity (players' tokens).
package servicekit
