package service

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quickmatch-dev/quickmatch/pkg/testkit"
)

// TestCloseWaitsForTheDrain: Close returns once the connection drained:
// the message a handler was given is handled, and the connection closed.
// Before, Close returned as the drain began, and a process that then
// exited cut the handler off mid-message.
func TestCloseWaitsForTheDrain(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	nc := testkit.Connect(t, srv)
	started := make(chan struct{})
	var handled atomic.Bool
	if _, err := nc.Subscribe("work", func(*nats.Msg) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		handled.Store(true)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("work", nil); err != nil {
		t.Fatal(err)
	}
	<-started
	e := &Env{NC: nc, Log: quiet}
	e.Close()
	if !handled.Load() || !nc.IsClosed() {
		t.Fatalf("Close returned with the message handled %v, the connection closed %v; want both", handled.Load(), nc.IsClosed())
	}
}

// TestCloseWaitsForTheDrainWithinABound: a drain that does not end (a
// handler stuck, NATS away) holds Close drainWait, not nats.go's 30 s
// drain timeout, which is past a pod's grace.
func TestCloseWaitsForTheDrainWithinABound(t *testing.T) {
	t.Parallel()
	srv := testkit.RunServer(t)
	nc := testkit.Connect(t, srv)
	started := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	if _, err := nc.Subscribe("stuck", func(*nats.Msg) {
		close(started)
		<-release
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("stuck", nil); err != nil {
		t.Fatal(err)
	}
	<-started
	e := &Env{NC: nc, Log: quiet}
	begin := time.Now()
	e.Close()
	if took := time.Since(begin); took > drainWait+time.Second || !nc.IsClosed() {
		t.Fatalf("Close took %s, the connection closed %v; want %s at most, closed", took, nc.IsClosed(), drainWait)
	}
}
