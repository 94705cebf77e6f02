package proc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quickmatch-dev/quickmatch/pkg/servicekit/ops"
)

// logMu keeps the lines of processes writing to one Logs whole.
var logMu sync.Mutex

// Prefix is how a line of output is written to Logs: the name, padded.
func Prefix(name, line string) string { return fmt.Sprintf("%-10s| %s\n", name, line) }

// copyOutput copies each line of out to Logs and the kept tail, and
// hands r the first address the process reports listening on.
func (p *Process) copyOutput(out io.Reader, r *run) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.write(line)
		if name, addr, ok := ParseListening(line); ok && r.addr == "" && name != ops.NamePprof {
			r.addr = addr
			close(r.listening)
		}
	}
}

// logf writes a line of the supervisor's about the process, as if the
// process had written it.
func (p *Process) logf(format string, args ...any) { p.write(fmt.Sprintf(format, args...)) }

func (p *Process) write(line string) {
	p.tail.add(line)
	if p.Logs == nil {
		return
	}
	logMu.Lock()
	defer logMu.Unlock()
	_, _ = io.WriteString(p.Logs, Prefix(p.Name, line))
}

// Output is the last lines the process wrote (all its runs), for an error
// that says it died.
func (p *Process) Output() string { return p.tail.String() }

// Listening waits until the current run reports the address it listens
// on (its first ops.ListeningMsg line not of the profiling endpoint),
// and returns it. It fails if the run exits first, or after timeout.
func (p *Process) Listening(ctx context.Context, timeout time.Duration) (string, error) {
	p.mu.Lock()
	r := p.run
	p.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.listening:
		return r.addr, nil
	case <-r.done:
	case <-t.C:
		return "", fmt.Errorf("%s reported no address it listens on (log line %q) after %s:\n%s", p.Name, ops.ListeningMsg, timeout, p.Output())
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "", p.exitedErr("during start-up", r.err)
}

func (p *Process) exitedErr(when string, err error) error {
	return fmt.Errorf("%s exited %s: %v; its last output:\n%s", p.Name, when, err, p.Output())
}

// Exited is nil while the current run runs, else an error saying it
// exited (when: "during start-up"), how, and its last output.
func (p *Process) Exited(when string) error {
	select {
	case <-p.Done():
		return p.exitedErr(when, p.Err())
	default:
		return nil
	}
}

// Answers says whether url answers 2xx now (within 2 s).
func Answers(ctx context.Context, url string) bool { return ops.Probe(ctx, url, 2*time.Second) == nil }

// WaitReady polls url until it answers 200, failing if the current run
// exits first (with its last output), or after timeout.
func (p *Process) WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !Answers(ctx, url) {
		if err := p.Exited("during start-up"); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s; its last output:\n%s", p.Name, url, timeout, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// ParseListening reads a log line written by ops.Listen: msg
// ops.ListeningMsg with the listener's name and bound address, in slog's
// JSON or text format (LOG_FORMAT).
func ParseListening(line string) (name, addr string, ok bool) {
	if strings.HasPrefix(line, "{") {
		var l struct{ Msg, Name, Addr string }
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != ops.ListeningMsg || l.Addr == "" {
			return "", "", false
		}
		return l.Name, l.Addr, true
	}
	f := logfmt(line)
	if f["msg"] != ops.ListeningMsg {
		return "", "", false
	}
	return f["name"], f["addr"], f["addr"] != ""
}

// logfmt reads the key=value pairs of a line of slog's text format;
// values may be quoted.
func logfmt(line string) map[string]string {
	out := map[string]string{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		sp := strings.IndexByte(line, ' ')
		if eq < 0 {
			break
		}
		if sp >= 0 && sp < eq { // a word without a value
			line = line[sp:]
			continue
		}
		key, rest := line[:eq], line[eq+1:]
		val := rest
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else if i := strings.IndexByte(rest, ' '); i >= 0 {
			val, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		out[key] = val
		line = rest
	}
	return out
}

// tailBytes bounds what a Process keeps of its output.
const tailBytes = 64 << 10

// tail keeps the last lines written to it, up to max bytes (tailBytes
// when zero).
type tail struct {
	mu    sync.Mutex
	lines []string
	size  int
	max   int
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := t.max
	if limit <= 0 {
		limit = tailBytes
	}
	t.lines = append(t.lines, line)
	t.size += len(line) + 1
	for t.size > limit && len(t.lines) > 1 {
		t.size -= len(t.lines[0]) + 1
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "(no output)\n"
	}
	return strings.Join(t.lines, "\n") + "\n"
}

// Kept is a Logs writer that keeps the last lines written to it (up to
// max bytes) for a failing test to print, and passes them on to next
// (nil: nowhere).
type Kept struct {
	mu   sync.Mutex // keeps lines of concurrent writers whole
	next io.Writer
	t    tail
}

// NewKept keeps up to max bytes of what is written to it.
func NewKept(next io.Writer, max int) *Kept { return &Kept{next: next, t: tail{max: max}} }

// Write keeps p's lines and passes p on.
func (k *Kept) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, line := range strings.Split(strings.TrimSuffix(string(p), "\n"), "\n") {
		k.t.add(line)
	}
	if k.next == nil {
		return len(p), nil
	}
	return k.next.Write(p)
}

// String is the lines kept.
func (k *Kept) String() string { return k.t.String() }
