// Package tools pins the command-line tools the project runs (the nats CLI
// and staticcheck) as Go tool dependencies, in a module of their own so that
// their dependencies never leak into the services' builds. It is not in
// go.work; build a tool with `GOWORK=off go build -C tools -o ../bin/nats
// github.com/nats-io/natscli/nats`, or let the Makefile do it.
package tools
