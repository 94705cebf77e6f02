package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one process of the system, kept running the way Kubernetes
// keeps a pod's container running: when it exits, it is started again
// after a second (or after the down time of the fault that killed it).
// The harness kills, pauses and resumes it.
type proc struct {
	name string
	kind string // nats, frontend, matcher, allocator, game
	path string
	args []string
	env  []string
	logs io.Writer

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current run exits
	delay    time.Duration // before the next start, set by a fault
	killed   bool          // the current run was killed by the harness
	stopping bool
	stopped  chan struct{}
	// Crashes counts exits nobody asked for.
	crashes int
}

// supervise starts the process and restarts it whenever it exits, until
// stop. It returns once the first start was tried.
func (p *proc) supervise() error {
	p.stopped = make(chan struct{})
	if err := p.start(); err != nil {
		return err
	}
	go func() {
		defer close(p.stopped)
		for {
			p.mu.Lock()
			done := p.done
			p.mu.Unlock()
			<-done
			p.mu.Lock()
			if p.stopping {
				p.mu.Unlock()
				return
			}
			if !p.killed {
				p.crashes++
			}
			delay := p.delay
			if delay == 0 {
				delay = time.Second
			}
			p.delay, p.killed = 0, false
			p.mu.Unlock()
			time.Sleep(delay)
			for p.start() != nil {
				time.Sleep(time.Second)
			}
		}
	}()
	return nil
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return nil
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, p.env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			fmt.Fprintf(p.logs, "%-11s| %s\n", p.name, sc.Text())
		}
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// signal sends sig to the running process.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// kill SIGKILLs the process; the supervisor starts it again after down.
func (p *proc) kill(down time.Duration) {
	p.mu.Lock()
	p.delay, p.killed = down, true
	done := p.done
	p.mu.Unlock()
	_ = p.signal(syscall.SIGCONT) // a paused process dies as well
	_ = p.signal(syscall.SIGKILL)
	if done != nil {
		<-done
	}
}

// stop ends supervision, asks the process to end (SIGTERM) and kills it
// after grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return
	}
	_ = p.signal(syscall.SIGCONT)
	_ = p.signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = p.signal(syscall.SIGKILL)
		<-done
	}
	if p.stopped != nil {
		<-p.stopped
	}
}

// provision runs the provisioning step (bin -provision) with env until it
// succeeds, as a Job of an install would be retried: a cluster that has
// just formed may not place 3-replica streams at once. It gives up after
// a minute.
func provision(ctx context.Context, bin string, env []string, logs io.Writer) error {
	deadline := time.Now().Add(time.Minute)
	for {
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PROVISION=true"}, env...)
		out, err := cmd.CombinedOutput()
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			fmt.Fprintf(logs, "%-11s| %s\n", "provision", sc.Text())
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("provision the topology: %w\n%s", err, out)
		}
		time.Sleep(time.Second)
	}
}
