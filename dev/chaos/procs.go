package chaos

import (
	"context"
	"io"
	"time"

	"github.com/quickmatch-dev/quickmatch/dev/stack/proc"
)

// restartAfter is the pause before a process that exited by itself is
// started again: fixed, not proc's growing backoff, so that a process
// crashing in a loop keeps coming back at the pace the runs were tuned to.
const restartAfter = time.Second

// startTimeout bounds the wait for a process's address, and for it to be
// ready once started or restarted.
const startTimeout = 60 * time.Second

// member is one process of the system under test, kept running by
// proc.Process the way Kubernetes keeps a pod's container running: when
// it exits, it is started again after restartAfter (or after the down
// time of the fault that killed it). The harness kills, pauses and
// resumes it.
type member struct {
	*proc.Process
	kind  string // nats, frontend, matcher, allocator, game
	ready string // a URL that answers 200 once it is ready
}

func newMember(name, kind, path string, logs io.Writer, args, env []string) *member {
	return &member{kind: kind, Process: &proc.Process{Name: name, Path: path, Args: args, Env: env, Logs: logs,
		RestartMin: restartAfter, RestartMax: restartAfter}}
}

// supervise starts m and restarts it whenever it exits, until Stop: not
// until the run's ctx ends, since the harness stops every process itself
// once the run is over (system.stop).
func (m *member) supervise() error { return m.Supervise(context.Background()) }

// awaitReady waits until m answers at its ready URL again after a fault.
// Unlike proc's WaitReady at start-up, an exit meanwhile is not the end of
// the wait: the killed run may not have been restarted yet, and a restart
// that fails is restarted in turn.
func (m *member) awaitReady(ctx context.Context) error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := m.WaitReady(ctx, m.ready, time.Until(deadline))
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
