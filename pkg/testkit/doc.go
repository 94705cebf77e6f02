// Package testkit starts real components for tests: an embedded nats-server
// with JetStream (alone or as a 3-node cluster) on random loopback ports with
// storage in a temporary directory, and the real nats CLI pinned in the
// tools module. Everything it starts is stopped by t.Cleanup.
package testkit
