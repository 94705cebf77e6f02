// Package servicekit holds the plumbing every quickmatch service shares, in
// sub-packages named for what they do: envflag (flags with environment
// fallbacks), natsconn (connecting to NATS), logging (slog set-up) and ops
// (the health, readiness and metrics server).
package servicekit
