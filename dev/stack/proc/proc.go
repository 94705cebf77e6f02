// Package proc runs the child processes of a local system (dev/stack,
// dev/chaos): each one's output is prefixed with its name, copied to a
// log and kept (the last lines, for the error that says it died), the
// address it reports listening on is read from its log line
// (ops.ListeningMsg), and Supervise keeps it running the way Kubernetes
// keeps a container running: restarted with capped exponential backoff
// whenever it exits, each exit and restart logged.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Defaults of Process.RestartMin and RestartMax.
const (
	DefaultRestartMin = time.Second
	DefaultRestartMax = 30 * time.Second
)

// Process is one child process. Set the exported fields, then Start it
// once or Supervise it; Stop ends it either way.
type Process struct {
	// Name prefixes each line of its output ("matcher-1 | ...").
	Name string
	// Path is the binary, Args its arguments.
	Path string
	Args []string
	// Env is its whole environment besides PATH and HOME: a stray
	// setting of the caller's shell (NATS_URL) must not reach it. Later
	// settings of a key win.
	Env []string
	// Logs receives each line of output, prefixed; nil discards them.
	// The last lines are kept either way (Output).
	Logs io.Writer
	// RestartMin and RestartMax bound Supervise's backoff: the first
	// restart waits RestartMin, each next one twice as long, up to
	// RestartMax; a run that lasted RestartMax starts over at RestartMin.
	// Zero means DefaultRestartMin and DefaultRestartMax.
	RestartMin, RestartMax time.Duration

	mu       sync.Mutex
	run      *run
	delay    time.Duration // before the next restart, set by Kill
	killed   bool          // the current run was ended by Kill
	stopping bool
	stop     chan struct{} // closed by Stop: a restart waiting gives up
	watched  chan struct{} // closed when the supervisor has returned
	crashes  int
	tail     tail
}

// run is one start of the process.
type run struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed once err is set
	err     error
	// addr is the first address it reports listening on, set before
	// listening closes.
	addr      string
	listening chan struct{}
}

// Start starts the process once.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop == nil {
		p.stop = make(chan struct{})
	}
	if p.stopping {
		return fmt.Errorf("start %s: stopped", p.Name)
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, p.Env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	r := &run{cmd: cmd, started: time.Now(), done: make(chan struct{}), listening: make(chan struct{})}
	p.run = r
	go func() {
		p.copyOutput(out, r)
		r.err = cmd.Wait()
		close(r.done)
	}()
	return nil
}

// Run starts the process once and waits for it to end, stopping it (with
// a grace of 5 s) if ctx ends first. An exit other than status 0 is an
// error with the process's last output.
func (p *Process) Run(ctx context.Context) error {
	if err := p.Start(); err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		_ = p.Stop(5 * time.Second)
		return fmt.Errorf("%s: %w; its last output:\n%s", p.Name, ctx.Err(), p.Output())
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("%s: %w; its last output:\n%s", p.Name, err, p.Output())
	}
	return nil
}

// Supervise starts the process and, until ctx ends or Stop, starts it
// again whenever it exits, after a backoff, logging the exit and the
// restart. It returns the first start's error. (On Ctrl-C the terminal
// signals the children as well as their parent: ctx, ended by that same
// signal, keeps their exits from being taken for crashes.)
func (p *Process) Supervise(ctx context.Context) error {
	if err := p.Start(); err != nil {
		return err
	}
	p.mu.Lock()
	p.watched = make(chan struct{})
	p.mu.Unlock()
	go p.watch(ctx)
	return nil
}

func (p *Process) watch(ctx context.Context) {
	defer close(p.watched)
	lo, hi := p.RestartMin, p.RestartMax
	if lo <= 0 {
		lo = DefaultRestartMin
	}
	if hi <= 0 {
		hi = DefaultRestartMax
	}
	wait := lo
	for {
		p.mu.Lock()
		r := p.run
		p.mu.Unlock()
		<-r.done
		p.mu.Lock()
		if p.stopping || ctx.Err() != nil {
			p.mu.Unlock()
			return
		}
		if time.Since(r.started) >= hi {
			wait = lo
		}
		delay, why := wait, "exited"
		if p.killed {
			delay, why = p.delay, "killed"
		} else {
			p.crashes++
			wait = min(2*wait, hi)
		}
		p.delay, p.killed = 0, false
		p.mu.Unlock()
		p.logf("%s: %v; restarting in %s", why, r.err, delay)
		for {
			select {
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			err := p.Start()
			if err == nil {
				p.logf("restarted (pid %d)", p.Pid())
				break
			}
			if p.stopped() {
				return
			}
			p.logf("restart: %v", err)
			delay = wait
		}
	}
}

// Setenv adds settings (KEY=VALUE) to Env for the next start: a restart
// binds the port the first run picked.
func (p *Process) Setenv(kv ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Env = append(p.Env, kv...)
}

// stopped says whether Stop or Unsupervise was called.
func (p *Process) stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// Pid is the process id of the current run, 0 before the first start.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		return 0
	}
	return p.run.cmd.Process.Pid
}

// Crashes counts the exits of a supervised process that neither Kill nor
// Stop asked for.
func (p *Process) Crashes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashes
}

// Done is closed when the current run exits; Err then says how.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run.done
}

// Err is how the current run ended (the error of exec.Cmd.Wait), nil
// while it runs or after a clean exit.
func (p *Process) Err() error {
	p.mu.Lock()
	r := p.run
	p.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// Signal sends sig to the current run.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		return fmt.Errorf("%s is not running", p.Name)
	}
	return p.run.cmd.Process.Signal(sig)
}

// Kill SIGKILLs the current run (resuming it first, if paused) and waits
// for it to end; a supervised process starts again after down, and the
// exit does not count as a crash.
func (p *Process) Kill(down time.Duration) {
	p.mu.Lock()
	p.delay, p.killed = down, true
	r := p.run
	p.mu.Unlock()
	if r == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// Unsupervise ends supervision: the process is not started again when it
// exits. Stopping several, the caller ends the supervision of all first,
// so that none is restarted while it waits for the others to stop.
func (p *Process) Unsupervise() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopping && p.stop != nil {
		close(p.stop)
	}
	p.stopping = true
}

// ErrKilled says Stop had to kill the process: it did not end within
// its grace after SIGTERM.
var ErrKilled = errors.New("did not stop in time; killed")

// Stop ends supervision, asks the current run to end (SIGTERM) and kills
// it after grace. It returns how the run ended (nil: exit status 0), or
// an error wrapping ErrKilled.
func (p *Process) Stop(grace time.Duration) error {
	p.Unsupervise()
	p.mu.Lock()
	r, watched := p.run, p.watched
	p.mu.Unlock()
	if r == nil {
		return nil
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-r.done:
		err = r.err
	case <-time.After(grace):
		_ = r.cmd.Process.Kill()
		<-r.done
		err = fmt.Errorf("%s %w after %s", p.Name, ErrKilled, grace)
	}
	if watched != nil {
		<-watched
	}
	return err
}
